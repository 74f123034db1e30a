import t from 'tap'
import type { Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodeJwt } from 'jose'
import { parseTrustDomain } from '../../spiffe/id'
import { JwtSource } from '../../spiffe/jwt-source'
import type { JwtSourceOptions } from '../../spiffe/jwt-source'
import { startStandIn, TD, WORKLOAD_ID } from '../helpers/workload-stand-in'
import type { StandIn } from '../helpers/workload-stand-in'

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

async function setUp (t: Test, options: JwtSourceOptions = {}, jwtTtlSeconds?: number): Promise<{ standIn: StandIn, source: JwtSource }> {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-jwt-source-'))
  const standIn = await startStandIn(dir, { jwtTtlSeconds })
  const source = new JwtSource({ address: standIn.address, ...options })
  t.teardown(async () => {
    source.close()
    await standIn.close(true)
    rmSync(dir, { recursive: true, force: true })
  })
  return { standIn, source }
}

void t.test('jwt source – a token is reused per audience until half its lifetime has passed', async t => {
  // 4 s tokens: iat is whole seconds, so a token fetched now is reused for more than 1 s and replaced within 2 s.
  const { source } = await setUp(t, {}, 4)
  const [first, concurrent] = await Promise.all([source.fetchJwtSvid('db'), source.fetchJwtSvid(['db'])])
  t.equal(concurrent, first, 'concurrent callers share one fetch')
  t.match(decodeJwt(first), { sub: WORKLOAD_ID, aud: ['db'] })
  t.equal(await source.fetchJwtSvid(['db']), first, 'cached')
  t.equal(await source.fetchJwtSvid(['db'], WORKLOAD_ID), await source.fetchJwtSvid(['db'], WORKLOAD_ID), 'cached per SPIFFE ID too')

  const both = await source.fetchJwtSvid(['b', 'a', 'b'])
  t.not(both, first, 'another audience, another token')
  t.same(decodeJwt(both).aud, ['a', 'b'])
  t.equal(await source.fetchJwtSvid(['a', 'b']), both, 'audience order and repeats do not matter')

  await sleep(2100)
  const renewed = await source.fetchJwtSvid('db')
  t.not(renewed, first, 'past half its lifetime, a fresh token')
  t.ok((decodeJwt(renewed).exp ?? 0) > (decodeJwt(first).exp ?? 0))
})

void t.test('jwt source – validates tokens locally against the fetched bundles', async t => {
  const { standIn, source } = await setUp(t)
  const bundles = await source.bundles()
  t.ok(bundles.getJwtBundle(parseTrustDomain(TD))?.findKey('stand-in-key'), 'the stand-in\'s key')
  t.equal(await source.bundles(), bundles, 'cached')
  const token = await source.fetchJwtSvid(['spiffe://td-a.test/db'])
  const svid = await source.validate(token, 'spiffe://td-a.test/db')
  t.equal(svid.id.toString(), WORKLOAD_ID)
  t.equal(svid.token, token)
  await t.rejects(source.validate(token, 'someone-else'), { code: 'ERR_JWT_SVID_AUD_MISMATCH' })

  standIn.deny = true
  await t.rejects(source.fetchJwtSvid('not-cached'), { code: 'ERR_WORKLOAD_API_DENIED' })
  t.equal(await source.fetchJwtSvid(['spiffe://td-a.test/db']), token, 'a cached token does not need the agent')
  await t.rejects(source.fetchJwtSvid([]), { code: 'ERR_WORKLOAD_API_INVALID_REQUEST' })
})

void t.test('jwt source – keeps validating with the last bundles while the agent is away', async t => {
  const { standIn, source } = await setUp(t, { bundleRefreshMs: 20, backoff: { initialMs: 1000 } })
  const token = await source.fetchJwtSvid('db')
  const bundles = await source.bundles()
  await standIn.close(true)
  await sleep(50)
  t.equal(await source.bundles(), bundles, 'the refresh failed; the last bundles serve')
  t.equal((await source.validate(token, 'db')).id.toString(), WORKLOAD_ID)
})

void t.test('jwt source – without bundles and without an agent, the failure is the answer', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-jwt-source-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const source = new JwtSource({ address: `unix://${join(dir, 'none.sock')}`, backoff: { initialMs: 60_000, maxMs: 60_000 } })
  t.teardown(() => source.close())
  const unavailable = { code: 'ERR_WORKLOAD_API_UNAVAILABLE', message: /none\.sock/ }
  await t.rejects(source.bundles(), unavailable)
  await t.rejects(source.validate('a.b.c', 'db'), unavailable, 'while backing off, the last failure is repeated')
})

void t.test('jwt source – close() is idempotent and later calls reject', async t => {
  const { source } = await setUp(t)
  source.close()
  source.close()
  await t.rejects(source.fetchJwtSvid('db'), { code: 'ERR_SOURCE_CLOSED', message: /JwtSource was closed/ })
  await t.rejects(source.bundles(), { code: 'ERR_SOURCE_CLOSED' })
  t.throws(() => new JwtSource({ address: 'tcp://localhost:1' }), { code: 'ERR_WORKLOAD_API_ADDRESS' })
  t.throws(() => new JwtSource({ address: '/x.sock', bundleRefreshMs: -1 }), TypeError)
})
