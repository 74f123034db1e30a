import t from 'tap'
import { credentials, loadPackageDefinition } from '@grpc/grpc-js'
import type { GrpcObject, ServiceClientConstructor, ServiceError } from '@grpc/grpc-js'
import { loadSync } from '@grpc/proto-loader'
import { protoPath as healthProtoPath } from 'grpc-health-check'
import { chmodSync, existsSync, mkdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { once } from 'node:events'
import pino from 'pino'
import { Agent } from '../../../agent/agent'
import { loadAgentConfig } from '../../../agent/config'
import { EntryService } from '../../../agent/spire-api/grpc-proto'
import { CODE, entry, rawCall, startSpireApiStand } from './fixtures/spire-api-stand'

// The SPIRE-compatible server socket: where SPIRE's tools find an API like SPIRE server's, with its modes, the
// health service, UNIMPLEMENTED for anything else, and a log line naming who changed which entries.

const gid = process.getgid?.() ?? 0

void t.test('server socket – made as SPIRE server makes it: directories 0750, socket 0770, the agent\'s group', async t => {
  const stand = await startSpireApiStand(t)
  t.equal(stand.agent.spireServerApi.socketPath, stand.serverSocket)
  for (const dir of [join(stand.dir, 'spire-server'), join(stand.dir, 'spire-server', 'private')]) t.equal(statSync(dir).mode & 0o777, 0o750, dir)
  const socket = statSync(stand.serverSocket)
  t.ok(socket.isSocket())
  t.equal(socket.mode & 0o777, 0o770)
  t.equal(socket.gid, gid)
  await stand.agent.stop()
  t.notOk(existsSync(stand.serverSocket), 'removed when the agent stops')
  // The fixture's teardown stops it again: stopping twice is harmless.
})

void t.test('server socket – a configured group gets the socket and the directories made for it', async t => {
  const stand = await startSpireApiStand(t, { serverSocketGroup: String(gid) })
  t.equal(statSync(stand.serverSocket).gid, gid)
  t.equal(statSync(join(stand.dir, 'spire-server')).gid, gid)
  t.equal(stand.agent.config.serverSocketGroup, String(gid))
})

void t.test('server socket – healthy for spire-server healthcheck (grpc.health.v1, service "")', async t => {
  const stand = await startSpireApiStand(t)
  const definition = loadPackageDefinition(loadSync(healthProtoPath, { keepCase: true, enums: String, defaults: true }))
  const Health = ((definition.grpc as GrpcObject).health as GrpcObject).v1 as GrpcObject
  const client = new (Health.Health as ServiceClientConstructor)(`unix:${stand.serverSocket}`, credentials.createInsecure())
  t.teardown(() => client.close())
  const check = async (service: string): Promise<unknown> => await new Promise((resolve, reject) => {
    (client as unknown as { Check: (r: object, cb: (e: ServiceError | null, v?: unknown) => void) => void }).Check({ service }, (e, v) => { if (e === null) resolve(v); else reject(e) })
  })
  t.same(await check(''), { status: 'SERVING' })
  for (const service of ['spire.api.server.entry.v1.Entry', 'spire.api.server.bundle.v1.Bundle', 'spire.api.server.agent.v1.Agent']) {
    t.same(await check(service), { status: 'SERVING' }, service)
  }
})

void t.test('server socket – what is not implemented says so, naming the method', async t => {
  const stand = await startSpireApiStand(t)
  for (const method of ['/spire.api.server.agent.v1.Agent/RenewAgent', '/spire.api.server.agent.v1.Agent/CreateJoinToken', '/spire.api.server.svid.v1.SVID/MintX509SVID']) {
    const answer = await rawCall(stand.serverSocket, method)
    t.equal(answer.code, CODE.UNIMPLEMENTED, method)
    t.match(answer.details, method, 'the message names the method')
  }
  t.same(await stand.failure('GetAuthorizedEntries', {}), {
    code: CODE.UNIMPLEMENTED,
    details: '/spire.api.server.entry.v1.Entry/GetAuthorizedEntries is not implemented: it is for SPIRE agents, and this agent serves its own entries'
  })
  const Service = EntryService()
  const client = new Service(`unix:${stand.serverSocket}`, credentials.createInsecure())
  t.teardown(() => client.close())
  const stream = (client as unknown as { SyncAuthorizedEntries: () => NodeJS.EventEmitter & { write: (m: object) => void } }).SyncAuthorizedEntries()
  stream.write({})
  const [err] = await once(stream, 'error') as [ServiceError]
  t.equal(err.code, CODE.UNIMPLEMENTED)
  t.match(err.details, '/spire.api.server.entry.v1.Entry/SyncAuthorizedEntries is not implemented')
})

void t.test('server socket – each change is logged: the method, the entries with their outcome, and the caller\'s uid and pid', async t => {
  const stand = await startSpireApiStand(t)
  const { results } = await stand.call<{ results: Array<{ entry: { id: string } }> }>('BatchCreateEntry', {
    entries: [entry(stand, '/logged'), entry(stand, '/refused', { selectors: [] })]
  })
  await stand.call('BatchDeleteEntry', { ids: [results[0].entry.id, 'no-such-entry'] })
  await stand.call('ListEntries', {})
  const changes = stand.logs().filter(line => line.component === 'spire-server-api' && typeof line.method === 'string')
  t.match(changes, [
    { method: 'BatchCreateEntry', caller: { uid: process.getuid?.(), pid: process.pid }, entries: [{ id: results[0].entry.id, code: 'OK' }, { id: '', code: 'INVALID_ARGUMENT' }], msg: 'SPIRE server API: BatchCreateEntry' },
    { method: 'BatchDeleteEntry', caller: { uid: process.getuid?.(), pid: process.pid }, entries: [{ id: results[0].entry.id, code: 'OK' }, { id: 'no-such-entry', code: 'NOT_FOUND' }] }
  ])
  t.equal(changes.length, 2, 'reads are not logged as changes')
})

void t.test('server socket – refused in a directory another user could write; the agent then starts nothing', async t => {
  const stand = await startSpireApiStand(t)
  const open = join(stand.dir, 'open')
  mkdirSync(open)
  chmodSync(open, 0o777)
  const config = loadAgentConfig(undefined, {
    trustDomain: 'plant.example', dataDir: join(stand.dir, 'second'), socket: join(stand.dir, 'w2.sock'), adminSocket: join(stand.dir, 'a2.sock'), serverSocket: join(open, 'api.sock')
  })
  await t.rejects(Agent.start(config, pino({ level: 'silent' })), { code: 'ERR_SOCKET_UNAVAILABLE', message: /open is writable by every user: another user could replace the socket in it/ })
  t.notOk(existsSync(join(stand.dir, 'a2.sock')), 'the admin socket it had opened is closed')
  t.notOk(existsSync(join(stand.dir, 'w2.sock')), 'and the Workload API socket')
  const again = await Agent.start({ ...config, serverSocket: join(stand.dir, 'second.sock') }, pino({ level: 'silent' }))
  t.pass('the store and the CA were released: the same data directory opens again')
  await again.stop()
  t.equal(await stand.failure('ListEntries', {}), undefined, 'the first agent goes on serving')
})
