import t from 'tap'
import { spawn } from 'node:child_process'
import { chmodSync, mkdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { connect } from 'node:net'
import { FLOOD } from '../../helpers/connection-flood'
import { SETPRIV_MISSING } from '../../helpers/netns-tools'
import { nodeAsUser } from '../../helpers/node-as-user'
import { startSpireApiStand, TD } from './fixtures/spire-api-stand'
import type { SpireApiStand } from './fixtures/spire-api-stand'

// Who may call the SPIRE server socket (issue 17, point 3), as SPIRE's policy says, with the kernel as witness: local
// callers (root, the socket's owner, its group) may call anything; a workload attested to a served entry with
// `admin: true` may call all but health; anyone may call GetBundle; everyone else is refused with SPIRE's words and a
// log line. The callers are real processes of other users (setpriv), calling with grpc-js.

const root = join(__dirname, '..', '..', '..')
const skip = (process.getuid?.() ?? 0) !== 0 ? 'needs root: callers run as other users (setpriv)' : SETPRIV_MISSING

const COUNT_ENTRIES = '/spire.api.server.entry.v1.Entry/CountEntries'
const GET_BUNDLE = '/spire.api.server.bundle.v1.Bundle/GetBundle'
const HEALTH = '/grpc.health.v1.Health/Check'
const METHODS = [COUNT_ENTRIES, GET_BUNDLE, HEALTH]

/** A client process: calls each method with an empty request and prints [{ code, details }] (code 0: answered). The
 * deadline is generous: 2,000 calls at once on a loaded machine must each be answered, not answered fast. */
const CLIENT = `
const grpc = require('@grpc/grpc-js')
const [socket, ...methods] = process.argv.slice(1)
const client = new grpc.Client('unix:' + socket, grpc.credentials.createInsecure())
const bytes = b => b
Promise.all(methods.map(method => new Promise(resolve => client.makeUnaryRequest(method, bytes, bytes, Buffer.alloc(0), new grpc.Metadata(), { deadline: Date.now() + 60000 },
  err => resolve(err ? { code: err.code, details: err.details } : { code: 0 })))))
  .then(results => { process.stdout.write(JSON.stringify(results)); client.close() })
`

type Outcome = Array<{ code: number, details?: string }>

/** Calls `methods` (METHODS unless given) on the stand's server socket as uid (and gid) `id`, with the given supplementary groups. */
async function callAs (stand: SpireApiStand, id: number, groups: number[] = [], methods: readonly string[] = METHODS): Promise<Outcome> {
  const [command, prefix] = nodeAsUser(id, groups)
  const child = spawn(command, [...prefix, '-e', CLIENT, stand.serverSocket, ...methods], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
  await new Promise(resolve => child.on('close', resolve))
  return JSON.parse(out) as Outcome
}

const DENIED = 7
const UNAVAILABLE = 14
const denied = (method: string): { code: number, details: string } => ({ code: DENIED, details: `authorization denied for method ${method}` })

void t.test('admin workloads – off (the default): the socket is 0770 and the kernel keeps other users out', { skip }, async t => {
  const stand = await startSpireApiStand(t)
  t.equal(statSync(stand.serverSocket).mode & 0o777, 0o770)
  const outcome = await callAs(stand, 64100)
  t.same(outcome.map(o => o.code), [UNAVAILABLE, UNAVAILABLE, UNAVAILABLE], 'another user cannot connect at all')
  t.same((await callAs(stand, 64101, [statSync(stand.serverSocket).gid])).map(o => o.code), [0, 0, 0], 'a member of the socket\'s group calls everything')
})

void t.test('admin workloads – on: everyone connects; local callers, admin workloads and GetBundle are authorized per call', { skip }, async t => {
  const stand = await startSpireApiStand(t, { serverSocketAdminWorkloads: true })
  const socketGid = statSync(stand.serverSocket).gid
  t.equal(statSync(stand.serverSocket).mode & 0o777, 0o777, 'the socket is open to every user')
  t.equal(statSync(join(stand.dir, 'spire-server', 'private')).mode & 0o777, 0o755, 'and its directory can be entered')

  t.same(await callAs(stand, 64100), [denied(COUNT_ENTRIES), { code: 0 }, denied(HEALTH)], 'a stranger gets GetBundle only, refused in SPIRE\'s words')
  t.match(stand.logs().filter(l => l.msg === 'SPIRE server API: call refused'), [{ method: /CountEntries|Health/, caller: { uid: 64100 }, reason: /neither local|for local callers only/ }],
    'a refusal is logged with the caller and the reason (one line for the two at once: at most one per uid per 10 s)')

  t.same((await callAs(stand, 64101, [socketGid])).map(o => o.code), [0, 0, 0], 'a member of the socket\'s group is local: everything')

  const admin = stand.agent.store.createEntry({ spiffeId: `spiffe://${TD}/orchestrator`, selectors: ['unix:uid:64100'], admin: true })
  t.same(await callAs(stand, 64100), [{ code: 0 }, { code: 0 }, denied(HEALTH)], 'attested to an admin entry: the API, but not health (local only, as SPIRE)')
  t.match(stand.logs().filter(l => l.msg === 'SPIRE server API: call by an admin workload'), [{ method: COUNT_ENTRIES, caller: { uid: 64100 }, spiffeId: `spiffe://${TD}/orchestrator` }])

  stand.agent.store.updateEntry(admin.id, { admin: false })
  t.same((await callAs(stand, 64100))[0], denied(COUNT_ENTRIES), 'admin taken away: refused at the next call')

  stand.agent.store.updateEntry(admin.id, { admin: true, parentId: `spiffe://${TD}/spire/agent/x509pop/another-device` })
  t.same((await callAs(stand, 64100))[0], denied(COUNT_ENTRIES), 'an admin entry this agent does not serve (parented on another agent) grants nothing')

  stand.agent.store.createEntry({ spiffeId: `spiffe://${TD}/not-admin`, selectors: ['unix:uid:64102'] })
  t.same((await callAs(stand, 64102))[0], denied(COUNT_ENTRIES), 'a registered workload without admin: refused')
})

void t.test('admin workloads – a closed directory an earlier run made is opened so that workloads can reach the socket', { skip }, async t => {
  const stand = await startSpireApiStand(t)
  const dir = join(stand.dir, 'again', 'private')
  mkdirSync(dir, { recursive: true })
  chmodSync(join(stand.dir, 'again'), 0o755)
  chmodSync(dir, 0o750)
  const reopened = await startSpireApiStand(t, { serverSocket: join(dir, 'api.sock'), serverSocketAdminWorkloads: true })
  t.equal(statSync(dir).mode & 0o777, 0o755)
  t.same((await callAs(reopened, 64100))[1], { code: 0 }, 'GetBundle reaches it')
})

void t.test('admin workloads – open to every user, the socket keeps the Workload API\'s limits: a flood is capped per uid, a silent connection is closed, local callers are served', { skip }, async t => {
  const stand = await startSpireApiStand(t, { serverSocketAdminWorkloads: true })
  const [command, prefix] = nodeAsUser(64100)
  const flood = spawn(command, [...prefix, '-e', FLOOD, stand.serverSocket, '1500', '100'], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  flood.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
  const exited = new Promise<number | null>(resolve => flood.on('close', resolve))
  let served = 0
  while (flood.exitCode === null && served < 20) {
    t.match(await stand.call('CountEntries', {}), { count: Number }, `a local caller is served during the flood (${served + 1})`)
    served++
  }
  t.equal(await exited, 0, 'the flood ran to its end')
  const { refused } = JSON.parse(out) as { refused: number }
  t.ok(refused >= 1500 - 1024 - 50, `${refused} of 1,500 connections refused (1,024 per uid)`)
  t.match(stand.logs().filter(l => l.event === 'workload_connection_refused'), [{ msg: /^SPIRE server API: refused a connection: the uid has workloadApi\.maxConnectionsPerUid/, uid: 64100, reason: 'max_connections_per_uid' }])

  const silent = connect(stand.serverSocket).on('data', () => {}).on('error', () => {})
  const openedAt = Date.now()
  await new Promise(resolve => silent.on('close', resolve))
  const heldMs = Date.now() - openedAt
  t.ok(heldMs >= 4_000 && heldMs < 9_000, `a connection that never calls is closed after the idle timeout (5 s; it lasted ${heldMs} ms)`)
  t.match(stand.logs().filter(l => l.reason === 'no_call'), [{ msg: /^SPIRE server API: refused a connection/ }])
  t.match(await stand.call('CountEntries', {}), { count: Number }, 'served after it all')
})

void t.test('admin workloads – a stranger refused 2,000 times over one connection: every call refused, the log not flooded, local callers served', { skip }, async t => {
  const stand = await startSpireApiStand(t, { serverSocketAdminWorkloads: true })
  const outcome = await callAs(stand, 64100, [], Array.from({ length: 2000 }, () => COUNT_ENTRIES))
  t.equal(outcome.length, 2000)
  t.ok(outcome.every(o => o.code === DENIED && o.details === `authorization denied for method ${COUNT_ENTRIES}`), 'each of the 2,000 calls refused in SPIRE\'s words')
  const lines = stand.logs().filter(l => l.msg === 'SPIRE server API: call refused')
  t.ok(lines.length >= 1 && lines.length <= 2, `${lines.length} log line(s) for 2,000 refusals`)
  t.match(await stand.call('CountEntries', {}), { count: Number }, 'a local caller is served after it')
})
