// DelegatedX509Source against an in-process STAND-IN Delegated Identity API server built from the same .proto
// (test/helpers/delegated-identity-stand-in.ts); SPIRE's real agent is in test/interop/spire-delegated-identity.interop.ts.
import t from 'tap'
import type { Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DelegatedIdentityClient } from '../../spiffe/delegated-identity-client'
import { DelegatedX509Source } from '../../spiffe/delegated-x509-source'
import { parseTrustDomain } from '../../spiffe/id'
import type { DelegatedX509SourceOptions } from '../../spiffe/delegated-x509-source'
import type { SourceError } from '../../spiffe/source-errors'
import { verifyPeerChain } from '../../spiffe/tls-peer'
import { X509Source } from '../../spiffe/x509-source'
import type { X509Context, X509ContextSource } from '../../spiffe/x509-context'
import { APP_ID, FEDERATED_TD, OTHER_TD, startDelegatedStandIn, TD } from '../helpers/delegated-identity-stand-in'
import type { DelegatedStandIn } from '../helpers/delegated-identity-stand-in'

const FAST = { initialMs: 20, maxMs: 100 }
const PID = { pid: 4242 }
const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-delegated-source-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

async function standInFor (t: Test, dir = tempDir(t)): Promise<DelegatedStandIn> {
  const standIn = await startDelegatedStandIn(dir)
  t.teardown(async () => await standIn.close(true))
  return standIn
}

function clientFor (t: Test, address: string): DelegatedIdentityClient {
  const client = new DelegatedIdentityClient(address, { backoff: FAST })
  t.teardown(() => client.close())
  return client
}

function sourceFor (t: Test, client: DelegatedIdentityClient, options: Partial<DelegatedX509SourceOptions> = {}): { source: DelegatedX509Source, errors: Error[] } {
  const errors: Error[] = []
  const source = new DelegatedX509Source({ client, workload: PID, backoff: FAST, onError: err => errors.push(err), ...options })
  t.teardown(() => source.close())
  return { source, errors }
}

async function nextUpdate (source: DelegatedX509Source): Promise<X509Context> {
  return await new Promise(resolve => source.once('update', resolve))
}

void t.test('delegated source – has X509Source\'s surface: either one is an X509ContextSource', async t => {
  const standIn = await standInFor(t)
  const sources: X509ContextSource[] = [sourceFor(t, clientFor(t, standIn.address)).source, new X509Source({ address: standIn.address })]
  ;(sources[1] as X509Source).close()
  t.equal(sources[0].address, standIn.address)
})

void t.test('delegated source – ready() gives the SVID with its own trust domain\'s bundle and the federated ones its entry names, no others', async t => {
  const standIn = await standInFor(t)
  const { source } = sourceFor(t, clientFor(t, standIn.address))
  t.equal(source.current, undefined)
  const context = await source.ready(5000)
  t.equal(source.current, context)
  t.equal(context.spiffeId.toString(), APP_ID)
  const issued = standIn.workloads.get('pid:4242')?.svids[0]
  t.same(context.svid.chain, issued?.chain)
  t.ok(context.svid.key.asymmetricKeyType === 'ec', 'a KeyObject')
  t.ok(context.svid.bundle.hasAuthority(standIn.ca.cert), 'the SVID carries its own trust domain\'s bundle')
  t.equal(context.notAfter.getTime(), new Date(issued?.leaf.validTo ?? 0).getTime())
  t.same([...context.bundles].map(b => b.trustDomain.name).sort(), [TD, FEDERATED_TD], `${OTHER_TD}, which the agent has but the entry does not federate with, is left out`)
  t.equal(verifyPeerChain(standIn.federatedCa.issueSvid(`spiffe://${FEDERATED_TD}/peer`).chain, context.bundles).toString(), `spiffe://${FEDERATED_TD}/peer`)
  t.throws(() => verifyPeerChain(standIn.otherCa.issueSvid(`spiffe://${OTHER_TD}/peer`).chain, context.bundles), { code: 'ERR_X509_SVID_NO_BUNDLE' })
  t.ok(Object.isFrozen(context) && Object.isFrozen(source.workload))
})

void t.test('delegated source – N sources of one client share ONE bundle stream; it closes with the last and opens again', async t => {
  const standIn = await standInFor(t)
  const client = clientFor(t, standIn.address)
  const N = 6
  for (let pid = 1; pid <= N; pid++) standIn.workloads.set(`pid:${pid}`, { svids: [standIn.ca.issueSvid(`spiffe://${TD}/app-${pid}`)], federatesWith: [] })
  const sources = Array.from({ length: N }, (_, i) => sourceFor(t, client, { workload: { pid: i + 1 } }).source)
  const contexts = await Promise.all(sources.map(async source => await source.ready(5000)))
  t.same(contexts.map(c => c.spiffeId.toString()), Array.from({ length: N }, (_, i) => `spiffe://${TD}/app-${i + 1}`))
  t.same(standIn.calls, { x509Svids: N, x509Bundles: 1, jwtBundles: 0, jwtSvids: 0 }, `${N} SVID streams, one bundle stream`)
  t.equal(client.x509Bundles.subscriberCount, N)

  standIn.bundles.set(`spiffe://${TD}`, Buffer.concat([standIn.ca.certDer, standIn.otherCa.certDer]))
  const updated = Promise.all(sources.map(async source => await nextUpdate(source)))
  standIn.pushBundles()
  t.ok((await updated).every(c => c.bundles.getX509Bundle(c.spiffeId.trustDomain)?.size === 2), 'one bundle message updates every source')

  for (const source of sources) source.close()
  while (standIn.open().x509Bundles + standIn.open().x509Svids > 0) await sleep(10)
  t.equal(client.x509Bundles.subscriberCount, 0)
  t.equal(client.x509Bundles.current, undefined, 'the bundles are forgotten with the stream')
  await sourceFor(t, client).source.ready(5000)
  t.equal(standIn.calls.x509Bundles, 2, 'a new source opens it again')
})

void t.test('delegated source – a rotation or a bundle change of its own emits update; resends and others\' changes do not', async t => {
  const standIn = await standInFor(t)
  const { source, errors } = sourceFor(t, clientFor(t, standIn.address))
  const first = await source.ready(5000)
  const updates: X509Context[] = []
  source.on('update', context => updates.push(context))

  standIn.pushSvids()
  standIn.pushBundles()
  standIn.bundles.set(`spiffe://${OTHER_TD}`, Buffer.concat([standIn.otherCa.certDer, standIn.ca.certDer]))
  standIn.pushBundles()
  await sleep(100)
  t.equal(updates.length, 0, 'identical resends and a change to a trust domain it does not federate with emit nothing')

  const workload = standIn.workloads.get('pid:4242')
  if (workload !== undefined) workload.svids = [standIn.ca.issueSvid(APP_ID)]
  standIn.pushSvids()
  const rotated = await nextUpdate(source)
  t.notSame(rotated.svid.chain[0], first.svid.chain[0])
  t.same(rotated.svid.chain, workload?.svids[0].chain, 'the rotated SVID')
  standIn.bundles.set(`spiffe://${FEDERATED_TD}`, Buffer.concat([standIn.federatedCa.certDer, standIn.otherCa.certDer]))
  standIn.pushBundles()
  const federatedChange = await nextUpdate(source)
  t.equal(federatedChange.bundles.getX509Bundle(parseTrustDomain(FEDERATED_TD))?.size, 2, 'a federated bundle\'s change')
  t.equal(updates.length, 2)
  t.same(errors, [])
})

void t.test('delegated source – a malformed update is reported and the last good state stays', async t => {
  const standIn = await standInFor(t)
  const { source, errors } = sourceFor(t, clientFor(t, standIn.address))
  const first = await source.ready(5000)
  standIn.sendRaw('SubscribeToX509SVIDs', { x509_svids: [{ x509_svid: null, x509_svid_key: Buffer.alloc(0) }], federates_with: [] })
  standIn.sendRaw('SubscribeToX509Bundles', { ca_certificates: { 'not a td': standIn.ca.certDer } })
  while (errors.length < 2) await sleep(10)
  t.match(errors, [{ code: 'ERR_DELEGATED_IDENTITY_API_RESPONSE_INVALID', message: /x509_svid is missing/ }, { code: 'ERR_DELEGATED_IDENTITY_API_RESPONSE_INVALID', message: /invalid bundle for "not a td"/ }])
  t.equal(source.current, first, 'the last good context is kept')
  t.same(standIn.calls, { x509Svids: 1, x509Bundles: 1, jwtBundles: 0, jwtSvids: 0 }, 'on the same streams')
})

void t.test('delegated source – keeps the last good state while the agent is away and reconnects both streams when it is back', async t => {
  const dir = tempDir(t)
  const standIn = await startDelegatedStandIn(dir)
  const { source, errors } = sourceFor(t, clientFor(t, standIn.address))
  const first = await source.ready(5000)
  await standIn.close(true)
  while (!errors.some(e => (e as { code?: string }).code === 'ERR_DELEGATED_IDENTITY_API_UNAVAILABLE' && /no socket there/.test(e.message))) await sleep(20)
  t.equal(source.current, first, 'the last good context is kept')
  t.equal(await source.ready(10), first)

  // (This stand-in's restart brings a new CA, as a real agent's would not: the two streams' updates come in either order.)
  const restarted = await standInFor(t, dir)
  const leaf = restarted.workloads.get('pid:4242')?.svids[0].chain[0] ?? Buffer.alloc(0)
  const updates: X509Context[] = []
  source.on('update', context => updates.push(context))
  while (!(updates.at(-1)?.svid.chain[0].equals(leaf) === true && updates.at(-1)?.svid.bundle.hasAuthority(restarted.ca.cert) === true)) await sleep(10)
  t.equal(source.current, updates.at(-1), 'the new agent\'s SVID and CA')
  t.same(restarted.calls, { x509Svids: 1, x509Bundles: 1, jwtBundles: 0, jwtSvids: 0 }, 'over one new stream each')
})

void t.test('delegated source – an update without SVIDs withdraws the identity; a new one brings it back', async t => {
  const standIn = await standInFor(t)
  const { source, errors } = sourceFor(t, clientFor(t, standIn.address))
  await source.ready(5000)
  const withdrawn = new Promise<SourceError>(resolve => source.once('withdrawn', resolve))
  const saved = standIn.workloads.get('pid:4242')
  standIn.workloads.delete('pid:4242')
  standIn.pushSvids()
  const err = await withdrawn
  t.match(err, { code: 'ERR_X509_SOURCE_WITHDRAWN', message: `the agent at ${standIn.address} no longer issues an X509-SVID to pid 4242 (it had ${APP_ID}): its registration entry was deleted or no longer matches, so that identity is withdrawn and no longer presented` })
  t.equal(source.current, undefined, 'nothing is presented any more')
  t.same(errors, [err], 'onError heard it too')
  await t.rejects(source.ready(200), { code: 'ERR_X509_SOURCE_TIMEOUT', message: /the agent issues no X509-SVID to that workload: no registration entry matches it \(by the selectors the agent attests that process to/ })

  const back = source.ready(5000)
  if (saved !== undefined) standIn.workloads.set('pid:4242', { ...saved, svids: [standIn.ca.issueSvid(APP_ID)] })
  standIn.pushSvids()
  t.equal((await back).spiffeId.toString(), APP_ID, 'a new entry\'s SVID is presented again')
})

void t.test('delegated source – ready() timeouts say what to check', async t => {
  const missing = join(tempDir(t), 'no-agent.sock')
  const { source } = sourceFor(t, clientFor(t, missing))
  await t.rejects(source.ready(300), {
    code: 'ERR_X509_SOURCE_TIMEOUT',
    message: `no X509-SVID for pid 4242 from the Delegated Identity API at ${missing} within 300 ms: the socket ${missing} does not exist: is the agent running, and is this its address (SPIRE_ADMIN_ENDPOINT_SOCKET)?`
  })

  const standIn = await standInFor(t)
  standIn.deny = 'caller not configured as an authorized delegate'
  const denied = sourceFor(t, clientFor(t, standIn.address), { workload: { selectors: [{ type: 'unix', value: 'uid:1000' }] } }).source
  await t.rejects(denied.ready(300), { code: 'ERR_X509_SOURCE_TIMEOUT', message: /^no X509-SVID for selectors unix:uid:1000 from .* within 300 ms: this process is not an authorized delegate of the agent/, cause: { code: 'ERR_DELEGATED_IDENTITY_API_DENIED' } })
  standIn.deny = undefined
  standIn.workloads.set('unix:uid:1000', { svids: [standIn.ca.issueSvid(APP_ID)], federatesWith: [] })
  t.equal((await denied.ready(5000)).spiffeId.toString(), APP_ID, 'being authorized later is picked up by the retries')
})

void t.test('delegated source – pick, a missing bundle, and close()', async t => {
  const standIn = await standInFor(t)
  const client = clientFor(t, standIn.address)
  const picky = sourceFor(t, client, { pick: svids => svids.find(s => s.spiffeId.endsWith('/nobody')) })
  while (picky.errors.length === 0) await sleep(10)
  t.match(picky.errors, [{ code: 'ERR_X509_SOURCE_NO_SVID', message: `the agent at ${standIn.address} for pid 4242 issued ${APP_ID}, but pick chose none of them` }])

  standIn.workloads.set('pid:7', { svids: [standIn.otherCa.issueSvid(`spiffe://${OTHER_TD}/x`)], federatesWith: [] })
  standIn.bundles.delete(`spiffe://${OTHER_TD}`)
  standIn.pushBundles()
  const orphan = sourceFor(t, client, { workload: { pid: 7 } })
  while (orphan.errors.length === 0) await sleep(10)
  t.match(orphan.errors, [{ code: 'ERR_X509_SOURCE_NO_BUNDLE', message: /issued spiffe:\/\/td-c\.test\/x, but the agent's bundles hold none for its trust domain td-c\.test \(they hold: td-a\.test, td-b\.test\)/ }])

  const pending = orphan.source.ready(5000)
  orphan.source.close()
  orphan.source.close()
  await t.rejects(pending, { code: 'ERR_SOURCE_CLOSED', message: /DelegatedX509Source was closed/ })
  await t.rejects(orphan.source.ready(), { code: 'ERR_SOURCE_CLOSED' })
  t.throws(() => new DelegatedX509Source({ client, workload: { pid: -1 } }), { code: 'ERR_DELEGATED_IDENTITY_API_INVALID_REQUEST' })
  client.close()
  t.throws(() => new DelegatedX509Source({ client, workload: PID }), { code: 'ERR_DELEGATED_IDENTITY_API_CLOSED' })
})

void t.test('delegated source – retrySoon() cuts a long wait for the returning agent down to the first delay', async t => {
  const dir = tempDir(t)
  const standIn = await startDelegatedStandIn(dir)
  const client = clientFor(t, standIn.address)
  // Each opening of the workload's stream, timed: the Nth failure schedules a wait from [½, 1] × initialMs × 2^(N−1).
  const openedAt: number[] = []
  const subscribe = client.subscribeToX509Svids.bind(client)
  client.subscribeToX509Svids = (...args) => {
    openedAt.push(Date.now())
    return subscribe(...args)
  }
  const initialMs = 10
  const { source } = sourceFor(t, client, { backoff: { initialMs, maxMs: 60_000 } })
  await source.ready(5000)
  await standIn.close(true)
  const attempts = 10
  while (openedAt.length < attempts) await sleep(5)
  // The last attempt fails at once (no socket); the wait it schedules is at least this long, less what is slept here.
  await sleep(100)
  const pendingAtLeast = initialMs * 2 ** (attempts - 1) / 2 - 100
  const restarted = await standInFor(t, dir)
  const leaf = restarted.workloads.get('pid:4242')?.svids[0].chain[0] ?? Buffer.alloc(0)
  const before = Date.now()
  source.retrySoon()
  while (source.current?.svid.chain[0].equals(leaf) !== true) await sleep(5)
  const took = Date.now() - before
  t.ok(took < pendingAtLeast, `the agent's return was noticed ${took} ms after retrySoon(), before the pending ${pendingAtLeast}+ ms wait`)
  t.equal(openedAt.length, attempts + 1, 'with one more attempt')
})
