import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadNodeConfig } from '../../node/config'
import { inIpv4Network, parseIpv4Network } from '../../node/ipv4-network'

// The node proxy's configuration file: defaults that work, every setting checked, each problem named with its line.

const dir = mkdtempSync(join(tmpdir(), 'chaperone-node-config-'))
let files = 0
function file (text: string): string {
  const path = join(dir, `node-${files++}.yaml`)
  writeFileSync(path, text)
  return path
}

void t.test('node config – the smallest file: defaults for the ports, the mark, limits and the admin endpoint', async t => {
  const config = loadNodeConfig(file('policy: /etc/chaperone/policy.yaml\n'))
  t.same(config.ports, { tunnel: 15008, inbound: 15006, outbound: 15001 })
  t.equal(config.mark, 1337)
  t.same(config.admin, { host: '127.0.0.1', port: 15000 })
  t.same(config.apps, [])
  t.equal(config.readyTimeoutMs, 30_000)
  t.equal(config.maxConnectionsPerPeer, 1000, 'a tenth of maxConnections, as the sidecar\'s')
  t.same([...config.upgrades], ['websocket'])
  t.equal(config.sameDevice, 'handoff', 'calls between its own apps handed over inside the process')
  t.ok(Object.isFrozen(config), 'frozen')
})

void t.test('node config – apps by namespace, with selectors, an ID to pick and their own HTTP ports', async t => {
  const config = loadNodeConfig(file(`policy: p.yaml
httpPorts: [8080]
appNetworks: [198.18.7.0/24]
guard: { bridges: [br-apps] }
services: { "198.18.7.11:8080": "spiffe://plant.example/apps/*" }
sameDevice: tunnel
apps:
  - { name: app-a, netns: /var/run/netns/app-a }
  - name: app-b
    netns: /proc/4242/ns/net
    selectors: ["docker:label:app:b", "unix:uid:1000"]
    spiffeId: spiffe://plant.example/apps/app-b
    httpPorts: [9090]
    excludeInboundPorts: [22]
`))
  const [a, b] = config.apps
  t.same([...a.httpPorts], [8080], 'the node\'s HTTP ports by default')
  t.equal(a.selectors, undefined, 'PID mode unless selectors are given')
  t.same(b.selectors, [{ type: 'docker', value: 'label:app:b' }, { type: 'unix', value: 'uid:1000' }], 'split at the first colon')
  t.same([...b.httpPorts], [9090])
  t.same(b.excludeInboundPorts, [22])
  t.equal(b.spiffeId, 'spiffe://plant.example/apps/app-b')
  t.same(config.guardBridges, ['br-apps'])
  t.equal(config.sameDevice, 'tunnel')
  t.ok(inIpv4Network(config.appNetworks[0], '198.18.7.200'))
})

void t.test('node config – every problem named, at its line', async t => {
  const cases: Array<[string, string, RegExp]> = [
    ['no policy', 'apps: []\n', /policy/],
    ['an unknown setting', 'policy: p.yaml\nmode: fast\n', /:2:.*mode/],
    ['one port twice', 'policy: p.yaml\nports: { tunnel: 15001 }\n', /port 15001 is used twice/],
    ['host bits in a network', 'policy: p.yaml\nappNetworks: [198.18.7.1/24]\n', /host bits set \(did you mean 198\.18\.7\.0\/24\?\)/],
    ['an octet out of range', 'policy: p.yaml\nappNetworks: [198.18.700.0/24]\n', /not an IPv4 network/],
    ['two apps of one name', 'policy: p.yaml\napps: [{ name: a, netns: /x }, { name: a, netns: /y }]\n', /name "a" is also app 1's/],
    ['two apps of one namespace', 'policy: p.yaml\napps: [{ name: a, netns: /x }, { name: b, netns: /x }]\n', /netns "\/x" is also app 1's/],
    ['a relative namespace path', 'policy: p.yaml\napps: [{ name: a, netns: x }]\n', /netns/],
    ['a selector without a type', 'policy: p.yaml\napps: [{ name: a, netns: /x, selectors: [nocolon] }]\n', /selectors/],
    ['a bad services key', 'policy: p.yaml\nservices: { "app-b": "spiffe://td/b" }\n', /services.*the key/],
    ['a bad services pattern', 'policy: p.yaml\nservices: { "198.18.0.1:80": "spiffe://td/b*" }\n', /bad SPIFFE ID pattern/],
    ['an unknown way for same-device calls', 'policy: p.yaml\nsameDevice: direct\n', /:2:.*sameDevice: must be one of "handoff", "tunnel"/],
    ['a bridge name too long for Linux', 'policy: p.yaml\nguard: { bridges: [a-bridge-name-too-long] }\n', /bridges/]
  ]
  for (const [name, text, message] of cases) t.throws(() => loadNodeConfig(file(text)), { code: 'ERR_CONFIG_INVALID', message }, name)
})

void t.test('IPv4 networks – membership and the edges', async t => {
  const net = parseIpv4Network('10.1.0.0/16')
  if (typeof net === 'string') throw new Error(net)
  t.ok(inIpv4Network(net, '10.1.255.255'))
  t.notOk(inIpv4Network(net, '10.2.0.0'))
  t.notOk(inIpv4Network(net, 'fd00::1'), 'IPv6 is in no IPv4 network')
  const all = parseIpv4Network('0.0.0.0/0')
  if (typeof all === 'string') throw new Error(all)
  t.ok(inIpv4Network(all, '203.0.113.9'), '/0 holds every address')
  const one = parseIpv4Network('192.0.2.7/32')
  if (typeof one === 'string') throw new Error(one)
  t.ok(inIpv4Network(one, '192.0.2.7'))
  t.notOk(inIpv4Network(one, '192.0.2.8'))
  t.match(parseIpv4Network('192.0.2.0/33'), /not an IPv4 network/)
})
