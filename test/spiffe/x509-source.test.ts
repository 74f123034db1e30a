import t from 'tap'
import type { Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { verifyPeerChain } from '../../spiffe/tls-peer'
import { X509Source } from '../../spiffe/x509-source'
import type { X509Context, X509SourceOptions } from '../../spiffe/x509-source'
import { FEDERATED_TD, startStandIn, TD, WORKLOAD_ID } from '../helpers/workload-stand-in'
import type { StandIn } from '../helpers/workload-stand-in'

const FAST = { initialMs: 20, maxMs: 100 }

/** A fresh directory (so a fresh socket path) removed in teardown. */
function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-x509-source-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

async function standInFor (t: Test, dir = tempDir(t)): Promise<StandIn> {
  const standIn = await startStandIn(dir)
  t.teardown(async () => await standIn.close(true))
  return standIn
}

function sourceFor (t: Test, options: X509SourceOptions): { source: X509Source, errors: Error[] } {
  const errors: Error[] = []
  const source = new X509Source({ backoff: FAST, onError: err => errors.push(err), ...options })
  t.teardown(() => source.close())
  return { source, errors }
}

async function nextUpdate (source: X509Source): Promise<X509Context> {
  return await new Promise(resolve => source.once('update', resolve))
}

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

void t.test('x509 source – ready() gives the first SVID with its own and federated bundles', async t => {
  const standIn = await standInFor(t)
  const { source } = sourceFor(t, { address: standIn.address })
  t.equal(source.current, undefined, 'nothing before the first message')
  const context = await source.ready(5000)
  t.equal(source.current, context)
  t.equal(context.spiffeId.toString(), WORKLOAD_ID)
  t.same(context.svid.chain[0], standIn.svid.chain[0])
  t.equal(context.svids.length, 1)
  t.equal(context.notAfter.getTime(), new Date(standIn.svid.leaf.validTo).getTime())
  t.ok(context.receivedAt.getTime() <= Date.now())
  t.same([...context.bundles].map(b => b.trustDomain.name).sort(), [TD, FEDERATED_TD])
  t.equal(verifyPeerChain(standIn.svid.chain, context.bundles).toString(), WORKLOAD_ID, 'the bundles verify a peer of our trust domain')
  t.ok(Object.isFrozen(context) && Object.isFrozen(context.svids), 'the context is frozen')
  t.equal(await source.ready(), context, 'a second ready() resolves from the cache')
})

void t.test('x509 source – a rotation emits update; an identical re-send does not', async t => {
  const standIn = await standInFor(t)
  const { source } = sourceFor(t, { address: standIn.address })
  const first = await source.ready(5000)
  const updates: X509Context[] = []
  source.on('update', context => updates.push(context))

  standIn.rotate(false)
  standIn.rotate()
  const rotated = await nextUpdate(source)
  t.not(rotated, first)
  t.same(rotated.svid.chain[0], standIn.svid.chain[0], 'the update carries the rotated SVID')
  t.notSame(rotated.svid.chain[0], first.svid.chain[0])
  standIn.rotate(false)
  await sleep(100)
  t.equal(updates.length, 1, 'the unchanged re-sends before and after the rotation emitted nothing')
  t.equal(source.current, rotated)
})

void t.test('x509 source – keeps the last good SVID while the agent is away and reconnects when it is back', async t => {
  const dir = tempDir(t)
  const standIn = await startStandIn(dir)
  const { source, errors } = sourceFor(t, { address: standIn.address })
  const first = await source.ready(5000)

  await standIn.close(true)
  while (errors.length < 2) await sleep(20)
  // The dropped stream ends CANCELLED; the retries then find no socket.
  t.match(errors.slice(0, 2), [{ code: /^ERR_WORKLOAD_API_/ }, { code: 'ERR_WORKLOAD_API_UNAVAILABLE' }], 'the failures are reported, and retried')
  t.equal(source.current, first, 'the last good context is kept')
  t.equal(await source.ready(10), first, 'ready() still resolves from the cache')

  const restarted = await standInFor(t, dir)
  const context = await nextUpdate(source)
  t.same(context.svid.chain[0], restarted.svid.chain[0], 'the new agent\'s SVID arrived')
  t.ok(context.bundles.getX509Bundle(context.spiffeId.trustDomain)?.hasAuthority(restarted.ca.cert), 'with its CA')
  t.equal(source.current, context)
})

void t.test('x509 source – retrySoon() cuts a long wait for the returning agent down to the first delay', async t => {
  const dir = tempDir(t)
  const standIn = await startStandIn(dir)
  const initialMs = 10
  const failedAt: number[] = []
  const { source } = sourceFor(t, { address: standIn.address, backoff: { initialMs, maxMs: 60_000 }, onError: () => failedAt.push(Date.now()) })
  await source.ready(5000)

  await standIn.close(true)
  // The Nth failure schedules a wait drawn from [½, 1] × initialMs × 2^(N−1): after the 9th, at least 1.28 s.
  const failures = 9
  while (failedAt.length < failures) await sleep(5)
  const pendingAtLeast = initialMs * 2 ** (failures - 1) / 2
  const restarted = await standInFor(t, dir)
  source.retrySoon()
  const context = await nextUpdate(source)
  const took = Date.now() - failedAt[failures - 1]
  t.ok(took < pendingAtLeast, `the agent's return was noticed ${took} ms after the last failure, before the pending ${pendingAtLeast}+ ms wait`)
  t.equal(failedAt.length, failures, 'with no attempt in between')
  t.same(context.svid.chain[0], restarted.svid.chain[0], 'the new agent\'s SVID arrived')
  t.equal(restarted.x509Calls, 1, 'through one stream')
})

void t.test('x509 source – retrySoon() with a stream open opens no second one; after close() it does nothing', async t => {
  const standIn = await standInFor(t)
  const { source, errors } = sourceFor(t, { address: standIn.address })
  await source.ready(5000)
  source.retrySoon()
  source.retrySoon()
  await sleep(100)
  t.equal(standIn.x509Calls, 1, 'still the one stream')
  standIn.rotate()
  t.same((await nextUpdate(source)).svid.chain[0], standIn.svid.chain[0], 'which still delivers rotations')
  source.close()
  source.retrySoon()
  await sleep(100)
  t.equal(standIn.x509Calls, 1, 'nothing opened after close()')
  t.same(errors, [])
})

void t.test('x509 source – an SVID pick refuses keeps the last good context and is reported', async t => {
  const standIn = await standInFor(t)
  const firstLeaf = standIn.svid.chain[0]
  const { source, errors } = sourceFor(t, { address: standIn.address, pick: svids => svids.find(s => s.chain[0].equals(firstLeaf)) })
  const first = await source.ready(5000)
  standIn.rotate()
  while (errors.length === 0) await sleep(10)
  t.match(errors, [{ code: 'ERR_X509_SOURCE_NO_SVID', message: new RegExp(`issued ${WORKLOAD_ID}, but pick chose none`) }])
  t.equal(source.current, first)
})

void t.test('x509 source – ready() times out naming the socket when nothing listens', async t => {
  const missing = join(tempDir(t), 'no-agent.sock')
  const { source, errors } = sourceFor(t, { address: `unix://${missing}` })
  await t.rejects(source.ready(300), {
    code: 'ERR_X509_SOURCE_TIMEOUT',
    message: `no X509-SVID from the Workload API at unix://${missing} within 300 ms: the socket ${missing} does not exist: is the agent running, and is this its address (SPIFFE_ENDPOINT_SOCKET)?`,
    cause: { code: 'ERR_WORKLOAD_API_UNAVAILABLE' }
  })
  t.ok(errors.length >= 2, `it kept trying (${errors.length} attempts)`)
})

void t.test('x509 source – ready() times out saying no identity was issued when the agent denies', async t => {
  const standIn = await standInFor(t)
  standIn.deny = true
  const { source } = sourceFor(t, { address: standIn.address })
  await t.rejects(source.ready(300), {
    code: 'ERR_X509_SOURCE_TIMEOUT',
    message: /no identity was issued to this process: a registration entry must match its selectors \(e\.g\. unix:uid:\d+, unix:gid:\d+, unix:path:\//,
    cause: { code: 'ERR_WORKLOAD_API_DENIED' }
  })
  standIn.deny = false
  t.equal((await source.ready(5000)).spiffeId.toString(), WORKLOAD_ID, 'an entry appearing later is picked up by the retries')
})

void t.test('x509 source – close() rejects pending ready(), stops retrying, and is idempotent', async t => {
  const { source, errors } = sourceFor(t, { address: `unix://${join(tempDir(t), 'none.sock')}` })
  const pending = source.ready(5000)
  source.close()
  source.close()
  await t.rejects(pending, { code: 'ERR_SOURCE_CLOSED', message: /X509Source was closed/ })
  await t.rejects(source.ready(), { code: 'ERR_SOURCE_CLOSED' })
  const seen = errors.length
  await sleep(200)
  t.equal(errors.length, seen, 'no attempts after close')
})

void t.test('x509 source – an invalid address fails at construction', async t => {
  t.throws(() => new X509Source({ address: 'tcp://localhost:1' }), { code: 'ERR_WORKLOAD_API_ADDRESS' })
  t.throws(() => new X509Source({ address: '/x.sock', backoff: { initialMs: 0 } }), TypeError)
})
