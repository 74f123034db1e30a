import t from 'tap'
import { Client, Metadata, credentials, status } from '@grpc/grpc-js'
import type { ServiceError } from '@grpc/grpc-js'
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { Agent } from '../../../agent/agent'
import { loadAgentConfig } from '../../../agent/config'
import { DELEGATE_ID, startDelegatedStand } from './fixtures/delegated-stand'
import type { X509BundlesMessage } from './fixtures/delegated-stand'

// delegatedIdentitySocket serves the Delegated Identity API and nothing else: giving a node proxy this socket
// gives it no admin power, no Workload API and nothing to probe. The admin socket serves the API too (as SPIRE's
// admin socket does); the Workload API socket does not.

const DELEGATED = '/spire.api.agent.delegatedidentity.v1.DelegatedIdentity/SubscribeToX509Bundles'

/** A unary call to any method with an empty request: the status it ends with (0: answered). */
async function statusOf (socket: string, method: string, metadata = new Metadata()): Promise<{ code: number, details: string }> {
  const client = new Client(`unix:${socket}`, credentials.createInsecure())
  const bytes = (value: unknown): Buffer => Buffer.isBuffer(value) ? value : Buffer.alloc(0)
  try {
    return await new Promise(resolve => {
      client.makeUnaryRequest(method, bytes, bytes, Buffer.alloc(0), metadata, { deadline: Date.now() + 10_000 }, (err: ServiceError | null) => {
        resolve(err === null ? { code: 0, details: '' } : { code: err.code, details: err.details })
      })
    })
  } finally {
    client.close()
  }
}

/** The first event of a server stream on `socket`: a message (code 0) or the status it ends with. */
async function firstOf (socket: string, method: string): Promise<number> {
  const client = new Client(`unix:${socket}`, credentials.createInsecure())
  const bytes = (value: unknown): Buffer => Buffer.isBuffer(value) ? value : Buffer.alloc(0)
  try {
    return await new Promise(resolve => {
      const call = client.makeServerStreamRequest(method, bytes, bytes, Buffer.alloc(0), new Metadata(), { deadline: Date.now() + 10_000 })
      call.on('data', () => { resolve(0); call.cancel() })
      call.on('error', (err: ServiceError) => { resolve(err.code) })
    })
  } finally {
    client.close()
  }
}

void t.test('delegated socket – serves the Delegated Identity API only; 0666, every call attested', async t => {
  const stand = await startDelegatedStand(t)
  t.equal(statSync(stand.delegatedSocket).mode & 0o777, 0o666, 'any local user may connect, as to the Workload API: what it gets depends on what the kernel says it is')
  t.equal(await firstOf(stand.delegatedSocket, DELEGATED), 0, 'the API is served')
  const workloadHeader = new Metadata()
  workloadHeader.set('workload.spiffe.io', 'true')
  for (const method of ['/chaperone.admin.v1.Admin/ListEntries', '/chaperone.admin.v1.Admin/GetCaStatus', '/SpiffeWorkloadAPI/FetchJWTSVID',
    '/grpc.health.v1.Health/Check', '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo', '/spire.api.server.entry.v1.Entry/ListEntries']) {
    t.equal((await statusOf(stand.delegatedSocket, method, workloadHeader)).code, status.UNIMPLEMENTED, `${method}: UNIMPLEMENTED`)
  }
  t.equal((await statusOf(stand.adminSocket, '/chaperone.admin.v1.Admin/GetCaStatus')).code, 0, 'the admin socket still serves the admin API')
  t.equal(await firstOf(stand.adminSocket, DELEGATED), 0, '… and the Delegated Identity API')
  t.equal(await firstOf(stand.workloadSocket, DELEGATED), status.UNIMPLEMENTED, 'the Workload API socket does not serve it')
})

void t.test('delegated socket – with delegatedIdentitySocketGroup it is 0660, given to that group', { skip: (process.getuid?.() ?? 0) !== 0 ? 'needs root: chown to another group' : false }, async t => {
  const stand = await startDelegatedStand(t, { delegatedIdentitySocketGroup: '64700' })
  const { mode, gid } = statSync(stand.delegatedSocket)
  t.equal(mode & 0o777, 0o660)
  t.equal(gid, 64700)
  t.ok((await stand.client().subscribe<X509BundlesMessage>('SubscribeToX509Bundles').next(0, 'the bundles')).ca_certificates, 'served')
})

void t.test('delegated socket – without it the API is on the admin socket only, and stopping the agent ends the streams', async t => {
  const stand = await startDelegatedStand(t, { delegatedIdentitySocket: undefined })
  t.throws(() => statSync(stand.delegatedSocket), 'no dedicated socket')
  const stream = stand.client('admin').subscribe<X509BundlesMessage>('SubscribeToX509Bundles')
  await stream.next(0, 'the bundles')
  const started = Date.now()
  await stand.agent.delegatedIdentity.stop()
  t.match(await stream.endedWithin(3000), { code: status.OK }, 'the stream is ended by the agent, at once')
  t.ok(Date.now() - started < 3000)
  t.match(stand.logs().filter(l => l.msg === 'delegated identity API: subscription closed'), [{ reason: 'the agent is stopping' }])
})

void t.test('delegated socket – a start that fails, at the dedicated socket or after it, leaves nothing listening', async t => {
  // Under /tmp: a Unix socket's path must stay short (108 bytes), tap's fixture folders are long.
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-delegated-start-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const config = (name: string): ReturnType<typeof loadAgentConfig> => ({
    ...loadAgentConfig(undefined, { trustDomain: 'plant.example', dataDir: join(dir, name, 'data'), socket: join(dir, name, 'workload.sock'), adminSocket: join(dir, name, 'admin.sock'), serverSocket: join(dir, name, 'server', 'api.sock') }),
    authorizedDelegates: [DELEGATE_ID],
    delegatedIdentitySocket: join(dir, name, 'delegated.sock')
  })
  const silent = pino({ level: 'silent' })
  const failure = async (promise: Promise<Agent>): Promise<Error> => await promise.then(async agent => { await agent.stop(); throw new Error('the agent started') }, (err: unknown) => err as Error)

  // The dedicated socket's path is taken by a file: the agent does not start, and closes what it had opened.
  const blocked = config('blocked')
  mkdirSync(join(dir, 'blocked'), { recursive: true })
  writeFileSync(blocked.delegatedIdentitySocket ?? '', 'not a socket')
  t.match(await failure(Agent.start(blocked, silent)), { code: 'ERR_SOCKET_UNAVAILABLE', message: /delegated\.sock exists and is not a socket/ })
  t.notOk(existsSync(blocked.socket), 'the Workload API socket is closed again')
  t.notOk(existsSync(blocked.adminSocket), 'the admin socket was never opened')

  // A later step fails (the SPIRE server socket's path is a file): the dedicated socket is closed with the rest.
  const later = config('later')
  mkdirSync(join(dir, 'later', 'server'), { recursive: true })
  writeFileSync(later.serverSocket, 'not a socket')
  t.match(await failure(Agent.start(later, silent)), { code: 'ERR_SOCKET_UNAVAILABLE', message: /api\.sock exists and is not a socket/ })
  t.notOk(existsSync(later.delegatedIdentitySocket ?? ''), 'the dedicated socket is closed and removed')
  t.notOk(existsSync(later.adminSocket), 'and the admin socket')

  // Both paths free: the agent starts (the same directories, so nothing above was left locked).
  const agent = await Agent.start({ ...later, serverSocket: join(dir, 'later', 'server', 'free.sock') }, silent)
  t.ok(existsSync(later.delegatedIdentitySocket ?? ''))
  await agent.stop()
  t.notOk(existsSync(later.delegatedIdentitySocket ?? ''), 'stopped: removed')
})
