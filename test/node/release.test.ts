import t from 'tap'
import { once } from 'node:events'
import { NODE_APP, skipOwnNetns, sleep } from '../interop/fleet-netns-stand'
import { chaperoneAgent } from '../interop/node-mode-identity'
import { startNodeModeStand } from '../interop/node-mode-stand'

// Letting an app go drains it in the background (node/node-proxy.ts), on real network namespaces (root only): while
// an app removed from the configuration drains a connection it still holds, an app added in the same change is
// served within seconds, not after the drain; the held connection lasts until the drain ends, then is closed.

const HOSTS = ['a', 'd', 'f']
const POLICY = `version: 1
defaultAction: deny
rules:
  - name: a-streams-to-d
    from: [spiffe://plant.example/apps/a]
    to: [spiffe://plant.example/apps/d]
    ports: [8080]
    action: allow
`
const DRAIN_S = 8

void t.test('node mode – an app let go drains in the background; the others are adopted meanwhile', { skip: skipOwnNetns(), timeout: 120_000 }, async t => {
  const stand = await startNodeModeStand(t, { prefix: 'rel', hosts: HOSTS, policy: POLICY, withEntries: HOSTS, identity: chaperoneAgent })
  await Promise.all([stand.register(), ...HOSTS.map(async host => { await stand.startApp(host) })])
  const write = (hosts: string[]): void => { stand.writeConfig(hosts, { lines: [`drain: ${DRAIN_S}s`], apps: { d: 'httpPorts: []' } }) }
  write(['a', 'd'])
  await stand.startNode()
  await stand.waitServed(['a', 'd'])

  // a holds a connection to d's app (TCP mode, handed over inside the node proxy); d's app keeps an idle connection.
  const holder = stand.topology.spawn('a', NODE_APP[0], [...NODE_APP.slice(1), '-e', `require('net').connect(8080, '${stand.address('d')}').on('close', () => { console.log('closed'); process.exit(0) }).on('error', () => {})`], { stdio: 'pipe' })
  let output = ''
  holder.stdout?.setEncoding('utf8').on('data', (s: string) => { output += s })
  t.teardown(() => { holder.kill('SIGKILL') })
  await sleep(1000)

  const changedAt = Date.now()
  write(['a', 'f'])
  await stand.waitServed(['f'], 20_000)
  const servedAfter = Date.now() - changedAt
  t.ok(servedAfter < (DRAIN_S - 3) * 1000, `f, added as d left, is served ${(servedAfter / 1000).toFixed(1)} s after the change, during d's drain (${DRAIN_S} s)`)
  t.equal(output, '', 'd\'s held connection is still open then')
  t.ok(stand.nodeLogs().some(line => line.event === 'app_released' && line.app === 'd'), 'd was let go')

  await Promise.race([once(holder, 'exit'), sleep((DRAIN_S + 5) * 1000)])
  const closedAfter = Date.now() - changedAt
  t.match(output, 'closed', `the held connection is closed when the drain ends (${(closedAfter / 1000).toFixed(1)} s after the change)`)
  t.ok(closedAfter >= (DRAIN_S - 1) * 1000, 'not before')
})
