/**
 * What both node-mode namespace tests prove, whatever agent serves the identities (node-mode-identity.ts): ten app
 * namespaces on one bridge under one node proxy, apps unchanged and with no sidecar. Each app reaches another by
 * address and port with no settings, and the callee sees the caller's ID in X-Forwarded-Client-Cert; a pair the
 * policy denies is refused and logged; a namespace with no entry gets no identity and no plaintext either way; an app
 * whose namespace is made anew (a restarted container) is served again; the node proxy killed under load lets no
 * plaintext cross the bridge, and service resumes when it comes back. Every capture is on the bridge, where apps
 * meet. Not a test itself.
 */
import type { Test } from 'tap'
import { run, waitFor } from '../helpers/command'
import { sleep } from './fleet-netns-stand'
import { startNodeModeStand } from './node-mode-stand'
import type { NodeModeStand } from './node-mode-stand'
import type { StartProvider } from './node-mode-identity'

export const APPS = Array.from({ length: 10 }, (_, i) => `app-${i}`)
/** A namespace served by the node proxy whose app has no registration entry. */
export const LONELY = 'lonely'
const POLICY = `version: 1
defaultAction: deny
rules:
  - name: apps-call-apps
    from: ["spiffe://plant.example/apps/*"]
    to: ["spiffe://plant.example/apps/*"]
    ports: [8080]
    http: { methods: [GET] }
    action: allow
  - name: app-2-never-calls-app-3
    from: [spiffe://plant.example/apps/app-2]
    to: [spiffe://plant.example/apps/app-3]
    action: deny
`

/**
 * How calls between two apps of the node proxy go (its `sameDevice`): handed over inside it, or through the tunnel
 * port as between devices. Each interop test runs one, so both are proven with every check.
 */
export type SameDevice = 'handoff' | 'tunnel'

/** The stand with every app and LONELY running, the node proxy serving them all, and every app but LONELY served. */
export async function startServedStand (t: Test, prefix: string, identity: StartProvider, sameDevice: SameDevice): Promise<NodeModeStand> {
  const stand = await startNodeModeStand(t, { prefix, hosts: [...APPS, LONELY], policy: POLICY, withEntries: APPS, identity })
  await Promise.all([stand.register(), ...[...APPS, LONELY].map(async app => { await stand.startApp(app) })])
  stand.writeConfig([...APPS, LONELY], { lines: [`sameDevice: ${sameDevice}`] })
  await stand.startNode()
  await stand.waitServed(APPS)
  return stand
}

/** Whether the capture holds `marker` anywhere: a plaintext request or answer that crossed the bridge. */
function holds (pcap: Buffer, marker: string): boolean {
  return pcap.includes(Buffer.from(marker))
}

async function expectCaller (t: Test, stand: NodeModeStand, from: string, to: string): Promise<void> {
  const answer = await stand.call(from, to, '/hello')
  t.equal(answer.code, '200', `${from} → ${to}: 200 (${answer.stderr.trim()})`)
  t.match(answer.body, `URI=${stand.idOf(from)}`, `${to} sees ${from}'s ID in X-Forwarded-Client-Cert`)
}

/** Every check, in order, as subtests of `t`. */
export async function nodeModeChecks (t: Test, stand: NodeModeStand, sameDevice: SameDevice): Promise<void> {
  await t.test('each app reaches another by address and port; the callee sees the caller', async t => {
    // Each to the next (app-2 to app-4: the policy denies it app-3).
    for (const [i, from] of APPS.entries()) await expectCaller(t, stand, from, APPS[(i + (from === 'app-2' ? 2 : 1)) % APPS.length])
    const status = await stand.status()
    t.equal(status.filter(app => app.ready).length, 10, '/status: ten apps ready')
    t.same(status.find(app => app.name === 'app-4')?.spiffeId, stand.idOf('app-4'), 'each with its own identity')
  })

  await t.test('a denied pair is refused and logged', async t => {
    const answer = await stand.call('app-2', 'app-3', '/secret')
    t.equal(answer.code, '403', 'app-2 → app-3: 403')
    const post = await stand.call('app-0', 'app-1', '/write', 'POST')
    t.equal(post.code, '403', 'POST is no rule\'s: 403')
    await sleep(200)
    const denials = stand.nodeLogs().filter(line => line.event === 'denied')
    // Through the tunnel, HTTP mode decides at the caller's side first: app-2's outbound refuses, naming the peer it
    // would have reached. Handed over, the callee's side decides: app-3's, naming the caller.
    const [app, peer] = sameDevice === 'tunnel' ? ['app-2', 'app-3'] : ['app-3', 'app-2']
    t.ok(denials.some(line => line.app === app && line.peer === stand.idOf(peer) && line.rule === 'app-2-never-calls-app-3'), `the denial is logged, labelled with the app (${app}), naming the rule`)
  })

  await t.test('a namespace with no entry gets no identity and no plaintext', async t => {
    const lonely = (await stand.status()).find(app => app.name === LONELY)
    t.equal(lonely?.ready, false, 'lonely is not served')
    t.ok((lonely?.missing ?? []).length > 0, `/status says why: ${JSON.stringify(lonely?.missing)}`)
    const capture = await stand.topology.capture('tcp')
    const out = await stand.call(LONELY, 'app-1', '/from-lonely-marker')
    const into = await stand.call('app-1', LONELY, '/to-lonely-marker')
    const pcap = await capture.stop()
    t.not(out.code, '200', `lonely → app-1 fails (${out.code})`)
    t.not(into.code, '200', `app-1 → lonely fails (${into.code})`)
    t.notOk(holds(pcap, 'lonely-marker'), 'no plaintext of either crossed the bridge')
  })

  await t.test('an app whose namespace is made anew is served again', async t => {
    const before = (await stand.status()).find(app => app.name === 'app-9')
    await stand.stopApp('app-9')
    await stand.topology.recreate('app-9')
    await stand.startApp('app-9')
    await stand.waitServed(['app-9'], 20_000)
    const after = (await stand.status()).find(app => app.name === 'app-9')
    t.not(after?.pid, before?.pid, `a new process attested (${String(before?.pid)} → ${String(after?.pid)})`)
    await expectCaller(t, stand, 'app-8', 'app-9')
    await expectCaller(t, stand, 'app-9', 'app-0')
  })

  await t.test('the node proxy killed under load: no plaintext crosses, and service resumes', async t => {
    await killedUnderLoad(t, stand, sameDevice)
  })
}

type Phase = 'before' | 'down' | 'after'

/**
 * app-5 calls app-6 in a loop while the node proxy is killed, left down 3 s, and started again; the loop goes on
 * until a few calls were made after every app was served again. A call made while app-5's redirect rules are being
 * installed anew may leave the namespace unredirected: the guard drops it on the bridge, and as conntrack keeps that
 * connection's (lack of) translation for its retransmissions, curl waits its whole timeout (5 s) for it.
 */
async function killedUnderLoad (t: Test, stand: NodeModeStand, sameDevice: SameDevice): Promise<void> {
  const capture = await stand.topology.capture('tcp')
  // The capture's control: a plain request from the device's own namespace crosses the bridge (app-6's inbound
  // port, which wants mutual TLS, refuses it).
  await run('curl', ['-sS', '-m', '2', `http://${stand.address('app-6')}:8080/capture-control`])
  let phase: Phase = 'before'
  const answers: Record<Phase, string[]> = { before: [], down: [], after: [] }
  let running = true
  const load = (async () => {
    while (running) {
      const at = phase
      const answer = await stand.call('app-5', 'app-6', '/outage-marker')
      answers[at].push(answer.code === '200' ? '200' : `${answer.code} ${answer.stderr.trim()}`)
    }
  })()
  await sleep(1500)
  phase = 'down'
  await stand.stopNode('SIGKILL')
  await sleep(3000)
  const restartedAt = Date.now()
  await stand.startNode()
  await stand.waitServed(APPS)
  t.comment(`the node proxy serves every app again ${((Date.now() - restartedAt) / 1000).toFixed(1)} s after it was started`)
  phase = 'after'
  await waitFor('five calls after the restart', 20_000, async () => answers.after.length >= 5 ? true : undefined)
  running = false
  await load
  const pcap = await capture.stop()
  const ok = (list: string[]): number => list.filter(code => code === '200').length
  const failures = (list: string[]): string => [...new Set(list.filter(code => code !== '200'))].join('; ')
  t.ok(ok(answers.before) > 0, `calls succeeded before the kill (${ok(answers.before)} of ${answers.before.length})`)
  t.ok(answers.down.length > ok(answers.down), `calls failed while the node proxy was down (${answers.down.length - ok(answers.down)} of ${answers.down.length}: ${failures(answers.down)})`)
  t.equal(ok(answers.after), answers.after.length, `every call once it was back succeeded (${ok(answers.after)} of ${answers.after.length}) ${failures(answers.after)}`)
  t.ok(holds(pcap, 'capture-control'), 'the capture sees what crosses the bridge: the control request')
  // Handed over, the calls never reach the bridge; through the tunnel they cross it as mutual TLS.
  if (sameDevice === 'tunnel') t.ok(holds(pcap, '\x16\x03\x01'), 'the capture saw the calls: TLS handshakes between the node proxy\'s sockets in the two namespaces')
  t.notOk(holds(pcap, 'outage-marker'), 'no plaintext crossed the bridge, before, during or after')
  await expectCaller(t, stand, 'app-5', 'app-6')
}
