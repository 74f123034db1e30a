import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadNodeConfig } from '../../node/config'
import { addressesOf, staleNamespaces } from '../../bench/node/devices'
import type { Devices } from '../../bench/node/devices'
import { APPS, DEVICE_ONE, layoutOf } from '../../bench/node/layout'
import { nodeConfigYaml } from '../../bench/node/node-proxy-process'
import { missingCommands } from '../../bench/node/requirements'
import { ladderSizes, nodeBenchSkipped, nodeRounds } from '../../bench/node/run'
import { NODE_PROXY_ID, extraNodeArgs } from '../../bench/node/stand'

void t.test('node bench layout – fifty ladder apps on d1 with the pair, unique uids, an entry per identity', async t => {
  const layout = layoutOf(50)
  t.equal(layout.ladderApps.length, 50)
  t.same(layout.ladderApps.slice(0, 3), [APPS.nodeClient, APPS.nodeServer, 'n-idle-2'], 'the first two of the ladder carry its load')
  const uids = [...layout.appUid.values(), ...layout.sidecarUid.values()]
  t.equal(new Set(uids).size, uids.length, 'no two apps or sidecars share a uid')
  t.notOk(uids.includes(0), 'none is the node proxy\'s uid')
  t.equal(layout.entries.length, 50 + 1 + 3, 'the ladder\'s apps, the other device\'s server, three sidecars')
  t.equal(new Set(layout.entries.map(e => e.id)).size, layout.entries.length)
  t.notOk(layout.entries.some(e => e.id === NODE_PROXY_ID), 'the node proxy\'s own entry is the agent\'s to add')
  t.same(layout.appNetworks, ['198.18.10.0/24', '198.18.20.0/24'], 'node-mode networks of both devices, not the sidecars\'')
  t.same(layoutOf(2).ladderApps, [APPS.nodeClient, APPS.nodeServer])
})

void t.test('node bench devices – apps addressed from .10 on their bridge, veth names short enough', async t => {
  const hosts = addressesOf(layoutOf(50).devices[0])
  t.same(hosts.slice(0, 2).map(h => [h.app, h.address]), [[APPS.nodeClient, '198.18.10.10'], [APPS.nodeServer, '198.18.10.11']])
  t.equal(hosts.find(h => h.app === APPS.sidecarClient)?.address, '198.18.11.10')
  t.ok(hosts.every(h => h.veth.length <= 15), 'interface names fit IFNAMSIZ')
  t.equal(new Set(hosts.map(h => h.veth)).size, hosts.length)
})

void t.test('node bench devices – namespaces left by a run whose process is gone are stale, others not', async t => {
  const names = ['chbench123-d1', 'chbench123-n-client', 'chbench456-d1', 'nodem1a2b-app-0', 'chbenchx-d1']
  t.same(staleNamespaces(names, pid => pid === 456), ['chbench123-d1', 'chbench123-n-client'])
})

void t.test('node bench – the node proxy\'s configuration is one node run accepts', async t => {
  const layout = layoutOf(3)
  const apps = Object.fromEntries(layout.ladderApps.map(app => [app, { ns: `run-${app}`, address: '198.18.10.10', device: DEVICE_ONE }]))
  const devices = { apps } as unknown as Devices
  const dir = mkdtempSync(join(tmpdir(), 'node-bench-config-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const file = join(dir, 'node.yaml')
  writeFileSync(file, nodeConfigYaml(devices, { workload: '/w.sock', delegated: '/d.sock', policyFile: '/p.yaml' },
    { device: DEVICE_ONE, apps: layout.ladderApps, appNetworks: layout.appNetworks, guardBridge: 'appbr' }))
  const config = loadNodeConfig(file)
  t.same(config.apps.map(app => app.netns), layout.ladderApps.map(app => `/var/run/netns/run-${app}`))
  t.same([...config.httpPorts], [8080])
  t.same(config.guardBridges, ['appbr'])
  t.equal(config.appNetworks.length, 2)
  t.equal(config.delegatedIdentityApi, 'unix:///d.sock')
})

void t.test('node bench – root only, and the commands it needs, or it says why not', async t => {
  t.match(nodeBenchSkipped(1000, []), /needs root/)
  t.match(nodeBenchSkipped(0, ['nsenter', 'setpriv']), /nsenter, setpriv not found \(apt-get install -y .*util-linux/)
  t.equal(nodeBenchSkipped(0, []), undefined)
  t.same(missingCommands(['sh', 'no-such-command-here'], '/bin:/usr/bin'), ['no-such-command-here'])
})

void t.test('node bench – a ladder of 1, 10, 50 apps and five rounds; 1, 2, 10 apps and one round in a quick run; extra node options', async t => {
  t.same(ladderSizes({ quick: false }), [1, 10, 50])
  t.same(ladderSizes({ quick: true }), [1, 2, 10])
  t.equal(nodeRounds({ quick: false, rounds: 3 }), 5, 'five rounds where the proxy benchmark makes three')
  t.equal(nodeRounds({ quick: true, rounds: 1 }), 1)
  t.same(extraNodeArgs({ BENCH_NODE_PROXY_ARGS: ' --cpu-prof  --cpu-prof-dir=/tmp/p ' }), ['--cpu-prof', '--cpu-prof-dir=/tmp/p'])
  t.same(extraNodeArgs({}), [])
})
