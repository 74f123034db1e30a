import t from 'tap'
import { Client, Metadata, credentials, loadPackageDefinition, status } from '@grpc/grpc-js'
import type { ServiceClientConstructor } from '@grpc/grpc-js'
import { loadSync } from '@grpc/proto-loader'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { createLocalJWKSet, jwtVerify } from 'jose'
import pino from 'pino'
import { Agent } from '../../../agent/agent'
import { loadAgentConfig } from '../../../agent/config'
import { identifyCaller } from '../../../agent/workload/caller'
import { workloadApiService } from '../../../spiffe/workload-proto'
import { WorkloadAttestor } from '../../../agent/attestation'
import { WorkloadClient } from '../../../spiffe/workload-client'
import { verifyX509Svid } from '../../../spiffe/x509-svid'
import { encodePem } from '../../../spiffe/pem'
import { BundleSet } from '../../../spiffe/bundle-set'
import { SpiffeBundle } from '../../../spiffe/spiffe-bundle'
import { parseTrustDomain } from '../../../spiffe/id'
import type { X509SvidResponseParsed } from '../../../spiffe/workload-messages'

// A real agent on a real socket; this test process is itself an attested workload (the kernel says uid 0 or
// whatever uid runs the tests), so registering unix:uid:<ours> gives it an identity.
const uid = process.getuid?.() ?? 0
const dir = mkdtempSync(join(tmpdir(), 'chaperone-wl-'))
chmodSync(dir, 0o755)
const socket = join(dir, 'workload.sock')
const address = `unix://${socket}`
const logger = pino({ level: 'silent' })
let agent: Agent
t.before(async () => {
  agent = await Agent.start(loadAgentConfig(undefined, { trustDomain: 'plant.example', dataDir: join(dir, 'data'), socket, adminSocket: join(dir, 'admin.sock'), serverSocket: join(dir, 'server.sock') }), logger)
})
t.teardown(async () => {
  await agent.stop()
  rmSync(dir, { recursive: true, force: true })
})

/** A raw call without our client's help, to see exactly what the server answers. */
async function rawUnary (method: string, metadata: Metadata): Promise<{ code?: number, details?: string }> {
  const client = new Client(`unix:${socket}`, credentials.createInsecure())
  const identity = (value: unknown): Buffer => Buffer.isBuffer(value) ? value : Buffer.alloc(0)
  try {
    return await new Promise(resolve => {
      client.makeUnaryRequest(`/SpiffeWorkloadAPI/${method}`, identity, identity, Buffer.alloc(0), metadata, (err) => {
        resolve(err === null ? {} : { code: err.code, details: err.details })
      })
    })
  } finally {
    client.close()
  }
}

/** The first FetchJWTBundles message, decoded only by protobuf: the bytes as any client would receive them. */
async function rawJwtBundles (): Promise<Record<string, Buffer>> {
  const Service = workloadApiService()
  const client = new Service(`unix:${socket}`, credentials.createInsecure())
  const metadata = new Metadata()
  metadata.set('workload.spiffe.io', 'true')
  const call = (client as unknown as { FetchJWTBundles: (req: object, md: Metadata) => NodeJS.EventEmitter & { cancel: () => void } }).FetchJWTBundles({}, metadata)
  try {
    const [message] = await once(call, 'data') as [{ bundles: Record<string, Buffer> }]
    return message.bundles
  } finally {
    call.cancel()
    call.on('error', () => {})
    client.close()
  }
}

async function codeOf (promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise
  } catch (err) {
    return (err as { code?: string }).code
  }
  return undefined
}

void t.test('workload api – the security header is required; WIT methods are UNIMPLEMENTED', async t => {
  const none = await rawUnary('FetchJWTSVID', new Metadata())
  t.equal(none.code, status.INVALID_ARGUMENT)
  t.match(none.details, /security header/)
  const withHeader = new Metadata()
  withHeader.set('workload.spiffe.io', 'true')
  t.equal((await rawUnary('FetchWITSVID', withHeader)).code, status.UNIMPLEMENTED)
})

void t.test('workload api – a caller without an entry gets PERMISSION_DENIED "no identity issued"', async t => {
  const client = new WorkloadClient(address)
  t.teardown(() => client.close())
  t.equal(await codeOf(client.fetchX509Svid()), 'ERR_WORKLOAD_API_DENIED')
  t.equal(await codeOf(client.fetchJwtSvid(['spiffe://plant.example/api'])), 'ERR_WORKLOAD_API_DENIED')
})

void t.test('workload api – a registered uid gets an X509-SVID that openssl and verifyX509Svid accept, and JWT-SVIDs that jose verifies', async t => {
  const entry = agent.store.createEntry({ spiffeId: 'spiffe://plant.example/tester', selectors: [`unix:uid:${uid}`] })
  t.teardown(() => { agent.store.deleteEntry(entry.id) })
  const client = new WorkloadClient(address)
  t.teardown(() => client.close())
  const response = await client.fetchX509Svid()
  t.equal(response.svids.length, 1)
  const [svid] = response.svids
  t.equal(svid.spiffeId, 'spiffe://plant.example/tester')
  const bundles = await client.fetchX509Bundles()
  const td = parseTrustDomain('plant.example')
  const fetched = bundles.get('plant.example')
  t.ok(fetched, 'FetchX509Bundles carries our trust domain')
  t.equal(String(verifyX509Svid(svid.chain, new BundleSet([new SpiffeBundle(td, { x509: fetched })]))), 'spiffe://plant.example/tester')
  writeFileSync(join(dir, 'svid.pem'), encodePem('CERTIFICATE', svid.chain.slice(0, 1)))
  writeFileSync(join(dir, 'bundle.pem'), fetched?.toPem() ?? '')
  const untrusted = svid.chain.length > 1 ? ['-untrusted', join(dir, 'untrusted.pem')] : []
  if (svid.chain.length > 1) writeFileSync(join(dir, 'untrusted.pem'), encodePem('CERTIFICATE', svid.chain.slice(1)))
  const openssl = spawnSync('openssl', ['verify', '-CAfile', join(dir, 'bundle.pem'), ...untrusted, join(dir, 'svid.pem')], { encoding: 'utf8' })
  t.equal(openssl.status, 0, `openssl verify: ${openssl.stdout}${openssl.stderr}`)

  // Invariant 5: a workload's private key lives in the agent's memory only, never in its data directory.
  const keyDer = svid.key.export({ type: 'pkcs8', format: 'der' })
  const needles = [keyDer, Buffer.from(keyDer.toString('base64').slice(0, 64))]
  const files = (readdirSync(join(dir, 'data'), { recursive: true }) as string[]).map(name => join(dir, 'data', name)).filter(path => statSync(path).isFile())
  t.ok(files.length > 3, `searched ${files.length} files of the data directory`)
  for (const file of files) {
    const content = readFileSync(file)
    t.notOk(needles.some(needle => content.includes(needle)), `${file} does not hold the workload's key`)
  }

  const [jwt] = await client.fetchJwtSvid(['spiffe://plant.example/api'])
  t.equal(jwt.spiffeId, 'spiffe://plant.example/tester')
  // Independent of our code: jose with the JWKS bytes exactly as FetchJWTBundles put them on the wire.
  const jwks = JSON.parse((await rawJwtBundles())['spiffe://plant.example'].toString()) as Parameters<typeof createLocalJWKSet>[0]
  const { payload } = await jwtVerify(jwt.token, createLocalJWKSet(jwks), { audience: 'spiffe://plant.example/api' })
  t.equal(payload.sub, 'spiffe://plant.example/tester')
  const validated = await client.validateJwtSvid(jwt.token, 'spiffe://plant.example/api')
  t.equal(validated.spiffeId, 'spiffe://plant.example/tester')
  t.same(validated.claims.aud, ['spiffe://plant.example/api'])
  t.equal(await codeOf(client.validateJwtSvid(jwt.token, 'spiffe://plant.example/other')), 'ERR_WORKLOAD_API_INVALID_REQUEST')
})

void t.test('workload api – an open stream follows entry changes and SVID renewals', async t => {
  const first = agent.store.createEntry({ spiffeId: 'spiffe://plant.example/streamed', selectors: [`unix:uid:${uid}`], x509SvidTtl: 4 })
  const client = new WorkloadClient(address)
  const updates: X509SvidResponseParsed[] = []
  const waitFor = async (what: string, test: (r: X509SvidResponseParsed) => boolean): Promise<X509SvidResponseParsed> => {
    const deadline = Date.now() + 10_000
    for (;;) {
      const found = updates.find(test)
      if (found !== undefined) return found
      if (Date.now() > deadline) throw new Error(`no update with ${what}; got ${updates.length}`)
      await new Promise(resolve => setTimeout(resolve, 20))
    }
  }
  const stop = client.watchX509Svids(update => updates.push(update), err => { if (!/cancel/i.test(err.message)) t.fail(err.message) })
  t.teardown(() => { stop(); client.close() })
  const ids = (r: X509SvidResponseParsed): string[] => r.svids.map(s => s.spiffeId)
  await waitFor('the first state', r => ids(r).includes('spiffe://plant.example/streamed'))
  const second = agent.store.createEntry({ spiffeId: 'spiffe://plant.example/second', selectors: [`unix:uid:${uid}`] })
  const both = await waitFor('both SVIDs', r => ids(r).includes('spiffe://plant.example/second'))
  t.same(ids(both), ['spiffe://plant.example/streamed', 'spiffe://plant.example/second'], 'the oldest entry is the default identity')
  agent.store.deleteEntry(second.id)
  const count = updates.length
  await waitFor('the second SVID gone', r => updates.indexOf(r) >= count && !ids(r).includes('spiffe://plant.example/second'))
  const leaf = both.svids[0].chain[0]
  const renewed = await waitFor('a renewed SVID', r => ids(r)[0] === 'spiffe://plant.example/streamed' && !r.svids[0].chain[0].equals(leaf))
  t.notOk(renewed.svids[0].chain[0].equals(leaf), 'a renewal (at half of the 4 s TTL) arrives on the open stream')
  agent.store.deleteEntry(first.id)
})

const bin = join(__dirname, '..', '..', '..', 'dist', 'cli', 'main.js')
const asOtherUids = uid !== 0 ? 'needs root to run processes under other uids' : existsSync(bin) ? false : 'not built: run `npm run build` (npm test does)'

void t.test('workload api – real processes under other uids: a registered uid gets its SVID, an unregistered one is denied', { skip: asOtherUids }, async t => {
  const entry = agent.store.createEntry({ spiffeId: 'spiffe://plant.example/uid-4242', selectors: ['unix:uid:4242'] })
  t.teardown(() => { agent.store.deleteEntry(entry.id) })
  const out = join(dir, 'out-4242')
  mkdirSync(out, { mode: 0o777 })
  chmodSync(out, 0o777)
  // Asynchronous: the agent answering runs in this very process, so a spawnSync would block it.
  const fetch = async (runAs: number, ...args: string[]): Promise<{ status: number | null, stderr: string }> => {
    const child = spawn(process.execPath, [bin, 'api', 'fetch', 'x509', '--socket', address, ...args], { uid: runAs, gid: runAs, stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    const [status] = await once(child, 'exit') as [number | null]
    return { status, stderr }
  }
  const registered = await fetch(4242, '--write', out)
  t.equal(registered.status, 0, `uid 4242 fetched its SVID: ${String(registered.stderr)}`)
  t.equal(statSync(join(out, 'svid.0.key')).mode & 0o777, 0o600, 'the key is written 0600')
  const verify = spawnSync('openssl', ['verify', '-CAfile', join(out, 'bundle.0.pem'), join(out, 'svid.0.pem')], { encoding: 'utf8' })
  t.equal(verify.status, 0, `openssl verify: ${verify.stdout}${verify.stderr}`)
  const leaf = spawnSync('openssl', ['x509', '-in', join(out, 'svid.0.pem'), '-noout', '-ext', 'subjectAltName'], { encoding: 'utf8' })
  t.match(leaf.stdout, /URI:spiffe:\/\/plant\.example\/uid-4242/)
  const denied = await fetch(4343)
  t.equal(denied.status, 1, 'an unregistered uid is refused')
  t.match(String(denied.stderr), /no identity issued/)
})

void t.test('workload api – the standard gRPC health service answers SERVING', { skip: existsSync(bin) ? false : 'not built' }, async t => {
  const child = spawn(process.execPath, [bin, 'healthcheck', '--socket', address], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  const [code] = await once(child, 'exit') as [number | null]
  t.equal(code, 0)
  t.match(stdout, /healthy/)
})

void t.test('workload api – server reflection lists the Workload API and the health service', async t => {
  // A reflection client as grpcurl would use it: the standard v1 reflection service, from the proto @grpc/reflection ships.
  const definition = loadSync(require.resolve('@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto'), { keepCase: true })
  const Reflection = (loadPackageDefinition(definition) as unknown as { grpc: { reflection: { v1: { ServerReflection: ServiceClientConstructor } } } }).grpc.reflection.v1.ServerReflection
  const client = new Reflection(`unix:${socket}`, credentials.createInsecure())
  const call = (client as unknown as { ServerReflectionInfo: () => NodeJS.EventEmitter & { write: (m: object) => void, end: () => void } }).ServerReflectionInfo()
  call.write({ list_services: '' })
  const [response] = await once(call, 'data') as [{ list_services_response: { service: Array<{ name: string }> } }]
  call.end()
  client.close()
  const names = response.list_services_response.service.map(s => s.name)
  t.ok(names.includes('SpiffeWorkloadAPI'), `services: ${names.join(', ')}`)
  t.notOk(names.some(name => name.startsWith('.')), 'standard names, without a leading dot')
})

void t.test('workload api – a caller whose PID was reused (same pid, another start time) is UNAUTHENTICATED', async t => {
  // Real PID reuse cannot be forced; this gives the real check a pin whose start time differs, as reuse would.
  const connections = { get: () => ({ credentials: { pid: process.pid, uid, gid: process.getgid?.() ?? 0 }, pin: { pid: process.pid, startTime: '1' } }) }
  const deps = { connections, attestor: new WorkloadAttestor({ logger }), store: agent.store, logger } as unknown as Parameters<typeof identifyCaller>[0]
  const metadata = new Metadata()
  metadata.set('workload.spiffe.io', 'true')
  const err = await identifyCaller(deps, 'any', metadata).catch((e: unknown) => e as { code: number, details: string })
  t.equal((err as { code: number }).code, status.UNAUTHENTICATED)
})
