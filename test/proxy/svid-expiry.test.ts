import t from 'tap'
import { CLI_SKIP, runCli } from '../helpers/cli'
import { TD, startMesh } from '../helpers/mesh'
import type { Mesh, RunningSidecar } from '../helpers/mesh'
import { adminGet, until } from '../helpers/admin-http'

// The sidecar's own SVID running out while the agent is away, with the real agent and short-lived SVIDs: what
// `/ready`, `/status`, `chaperone proxy wait` and the logs say, and how the sidecar recovers when the agent returns.

let mesh: Mesh
t.before(async () => {
  mesh = await startMesh(`version: 1
rules: []
`)
  // 2–3 s SVIDs (the agent takes any positive TTL), renewed at about half of that while the agent runs.
  await mesh.register(`${TD}/rotating`, 2)
  await mesh.register(`${TD}/server`, 3)
})
t.teardown(async () => { await mesh.close() })

async function startSidecar (name: string): Promise<RunningSidecar> {
  return await mesh.startSidecar(`${TD}/${name}`, { inbound: ['127.0.0.1:0=127.0.0.1:9'] })
}

const notAfterOf = (running: RunningSidecar): Date => {
  const state = running.sidecar.services.identity.current
  if (state === undefined) throw new Error('the sidecar has no SVID')
  return state.context.notAfter
}

const linesOf = (running: RunningSidecar, event: string): Array<Record<string, unknown>> => running.logs.filter(line => line.event === event)

void t.test('svid expiry – renewals before the first SVID\'s NotAfter keep /ready at 200 and log no expiry', async t => {
  const running = await startSidecar('rotating')
  const first = notAfterOf(running)
  await until('the first SVID\'s NotAfter to pass', () => Date.now() > first.getTime() + 300)
  t.ok(notAfterOf(running) > first, 'a renewed SVID is in use')
  t.same(linesOf(running, 'svid_expired'), [], 'the timer followed the renewals')
  t.same(await adminGet(running.address('admin'), '/ready'), { status: 200, body: '{\n  "ready": true\n}\n' })
})

void t.test('svid expiry – with the agent away, the SVID expires: 503 naming it, logged; the agent back, 200 again', async t => {
  const running = await startSidecar('server')
  const admin = running.address('admin')
  const { source } = running.sidecar.services.identity
  const retrySoon = source.retrySoon.bind(source)
  let retries = 0
  source.retrySoon = () => {
    retries++
    retrySoon()
  }

  await mesh.stopAgent()
  await until('svid_expired', () => linesOf(running, 'svid_expired').length > 0, 10_000)
  const notAfter = notAfterOf(running).toISOString()
  const expired = linesOf(running, 'svid_expired')
  t.match(expired, [{ level: 50, event: 'svid_expired', spiffeId: `${TD}/server`, notAfter, workloadApi: mesh.workloadApi }], 'one error line naming the SVID, its expiry and the Workload API')
  const expiring = linesOf(running, 'svid_expiring').filter(line => line.notAfter === notAfter)
  t.match(expiring, [{ level: 40, spiffeId: `${TD}/server`, workloadApi: mesh.workloadApi }], 'warned once beforehand')
  t.ok(running.logs.indexOf(expiring[0]) < running.logs.indexOf(expired[0]), 'the warning came first')
  t.equal(retries, 1, 'the sidecar asked the source to retry at once')

  const reason = `the SVID ${TD}/server expired at ${notAfter}; the Workload API at ${mesh.workloadApi} has not sent a new one`
  const ready = await adminGet(admin, '/ready')
  t.equal(ready.status, 503)
  t.same(JSON.parse(ready.body), { ready: false, missing: [reason] })
  t.match(JSON.parse((await adminGet(admin, '/status')).body), { spiffeId: `${TD}/server`, svidExpiry: notAfter, svidExpired: true })
  if (CLI_SKIP === false) {
    const wait = await runCli(['proxy', 'wait', '--admin', admin, '--timeout', '0.3'])
    t.equal(wait.status, 1)
    t.match(wait.stderr, `is not ready after 0.3 s: ${reason}`, '`chaperone proxy wait` says why')
  }

  const updatesBefore = linesOf(running, 'svid_updated').length
  await mesh.startAgent()
  await until('a new SVID', () => linesOf(running, 'svid_updated').length > updatesBefore)
  t.ok(notAfterOf(running).toISOString() > notAfter, 'the renewed SVID is in use')
  t.ok(running.logs.indexOf(linesOf(running, 'svid_updated')[updatesBefore]) > running.logs.indexOf(expired[0]), 'svid_updated follows svid_expired')
  t.same(await adminGet(admin, '/ready'), { status: 200, body: '{\n  "ready": true\n}\n' })
  t.match(JSON.parse((await adminGet(admin, '/status')).body), { svidExpired: false })
})
