import t from 'tap'
import type { Test } from 'tap'
import { run } from '../helpers/command'
import { sleep, skipOwnNetns } from '../interop/fleet-netns-stand'
import { chaperoneAgent } from '../interop/node-mode-identity'
import { startNodeModeStand } from '../interop/node-mode-stand'
import type { NodeModeStand } from '../interop/node-mode-stand'

// Node mode's same-device calls (proxy/listeners/same-device.ts), on real network namespaces under one node proxy
// with Chaperone's agent (root only): a call between two apps the node proxy serves is handed from the caller's side
// to the callee's inside the process. Nothing of it crosses the bridge (a capture holds neither its bytes nor a TLS
// handshake), and the callee's side still does everything mutual TLS and the tunnel would have led to: XFCC names
// the caller (a forged one removed), the policy decides per request in HTTP mode and per connection in TCP mode,
// denials logged by the callee's app, and `services` expectations checked (a mismatch refused as a TLS server's
// would be). With `sameDevice: tunnel` the same call crosses the bridge as mutual TLS.

const HOSTS = ['a', 'b', 'c', 'd', 'e']
const POLICY = `version: 1
defaultAction: deny
rules:
  - name: apps-read
    from: ["spiffe://plant.example/apps/*"]
    to: ["spiffe://plant.example/apps/*"]
    ports: [8080]
    http: { methods: [GET] }
    action: allow
  - name: c-never-calls-b
    from: [spiffe://plant.example/apps/c]
    to: [spiffe://plant.example/apps/b]
    action: deny
  - name: a-streams-to-d
    from: [spiffe://plant.example/apps/a]
    to: [spiffe://plant.example/apps/d]
    ports: [8080]
    action: allow
`

const holds = (pcap: Buffer, marker: string): boolean => pcap.includes(Buffer.from(marker))
const TLS_HANDSHAKE = '\x16\x03\x01'

/** The calls' capture on the bridge, with its control: a plain request from the device's own namespace. */
async function captured (stand: NodeModeStand, calls: () => Promise<void>): Promise<Buffer> {
  const capture = await stand.topology.capture('tcp')
  await run('curl', ['-sS', '-m', '2', `http://${stand.address('b')}:8080/capture-control`])
  await calls()
  await sleep(200)
  return await capture.stop()
}

async function servedStand (t: Test, sameDevice: 'handoff' | 'tunnel', stand?: NodeModeStand): Promise<NodeModeStand> {
  if (stand === undefined) {
    stand = await startNodeModeStand(t, { prefix: 'sdv', hosts: HOSTS, policy: POLICY, withEntries: HOSTS, identity: chaperoneAgent })
    const started = stand
    await Promise.all([started.register(), ...HOSTS.map(async host => { await started.startApp(host) })])
  } else await stand.stopNode('SIGTERM')
  // d serves 8080 in TCP mode; a connection to e must reach an ID e does not have.
  stand.writeConfig(HOSTS, { lines: [`sameDevice: ${sameDevice}`, `services: { "${stand.address('e')}:8080": "spiffe://plant.example/apps/b" }`], apps: { d: 'httpPorts: []' } })
  await stand.startNode()
  await stand.waitServed(HOSTS)
  return stand
}

void t.test('node mode – same-device calls are handed over inside the node proxy, or sent through the tunnel', { skip: skipOwnNetns(), timeout: 180_000 }, async t => {
  const stand = await servedStand(t, 'handoff')
  const id = (host: string): string => `spiffe://plant.example/apps/${host}`
  const logsOf = (event: string): Array<Record<string, unknown>> => stand.nodeLogs().filter(line => line.event === event)

  const answers: Record<string, { code: string, body: string }> = {}
  const pcap = await captured(stand, async () => {
    answers.read = await stand.call('a', 'b', '/read-marker', 'GET', ['X-Forwarded-Client-Cert: By=spiffe://plant.example/forged;URI=spiffe://plant.example/forged'])
    answers.post = await stand.call('a', 'b', '/post-marker', 'POST')
    answers.denied = await stand.call('c', 'b', '/denied-marker')
    answers.tcp = await stand.call('a', 'd', '/tcp-marker')
    answers.tcpDenied = await stand.call('b', 'd', '/tcp-denied-marker')
    answers.mismatch = await stand.call('a', 'e', '/mismatch-marker')
    answers.ownPort = await stand.call('a', 'b', '/own-port-marker', 'GET', [], 15008)
  })

  t.equal(answers.read.code, '200', 'a → b in HTTP mode: 200')
  t.match(answers.read.body, `By=${id('b')};`, 'b\'s app is told it is b')
  t.match(answers.read.body, `URI=${id('a')}`, 'b\'s app sees a\'s ID in X-Forwarded-Client-Cert')
  t.notMatch(answers.read.body, 'forged', 'the X-Forwarded-Client-Cert a\'s app sent is gone')
  t.equal(answers.post.code, '403', 'POST, no rule\'s: 403')
  t.equal(answers.denied.code, '403', 'c → b, denied by a rule: 403')
  await sleep(300)
  t.ok(logsOf('denied').some(line => line.app === 'b' && line.direction === 'inbound' && line.listener === 'tunnel' && line.peer === id('c') && line.rule === 'c-never-calls-b'),
    'the denial is logged by the callee\'s side (app b, listener tunnel), naming the caller and the rule')
  t.equal(answers.tcp.code, '200', 'a → d in TCP mode (d\'s httpPorts are none): 200')
  t.match(answers.tcp.body, 'caller=none', 'in TCP mode nothing is added to the bytes')
  t.equal(answers.tcpDenied.code, '000', 'b → d in TCP mode, no rule\'s: the connection is closed')
  t.ok(logsOf('denied').some(line => line.app === 'd' && line.peer === id('b') && line.port === 8080), 'and logged by d\'s side')
  t.equal(answers.mismatch.code, '000', 'a → e, where services expects b: refused')
  t.ok(logsOf('handshake_failed').some(line => line.app === 'a' && line.reason === 'ERR_X509_SVID_ID_MISMATCH' && String(line.err).includes(id('e'))),
    'logged by the caller\'s side as the TLS check would: the ID e has is not the one expected')

  t.equal(answers.ownPort.code, '000', 'a → b\'s tunnel port itself: refused')
  t.ok(logsOf('no_destination').some(line => line.app === 'b' && String(line.err).includes('port 15008')), 'logged by b\'s side: it would loop')

  t.ok(holds(pcap, 'capture-control'), 'the capture sees what crosses the bridge: the control request')
  t.notOk(['read', 'post', 'denied', 'tcp', 'tcp-denied', 'mismatch', 'own-port'].some(call => holds(pcap, `${call}-marker`)), 'no byte of the calls crossed the bridge')
  t.notOk(holds(pcap, TLS_HANDSHAKE), 'nor any TLS handshake: the calls were handed over inside the node proxy')

  await servedStand(t, 'tunnel', stand)
  let tunnelled = { code: '', body: '' }
  const tunnelPcap = await captured(stand, async () => { tunnelled = await stand.call('a', 'b', '/tunnel-marker') })
  t.equal(tunnelled.code, '200', 'sameDevice: tunnel — a → b: 200')
  t.match(tunnelled.body, `URI=${id('a')}`, 'b\'s app sees a\'s ID')
  t.ok(holds(tunnelPcap, TLS_HANDSHAKE), 'the call crossed the bridge as mutual TLS')
  t.notOk(holds(tunnelPcap, 'tunnel-marker'), 'and no plaintext of it')
})
