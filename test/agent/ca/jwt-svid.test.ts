import t from 'tap'
import { decodeJwt, decodeProtectedHeader } from 'jose'
import { parseSpiffeId, validateJwtSvid } from '../../../spiffe'
import { ManualClock, openCa, td } from './fixtures/ca-fixtures'

const workload = td.id('/ns/prod/sa/api')

for (const [jwtKeyType, alg] of [['ec-p256', 'ES256'], ['rsa-2048', 'RS256']] as const) {
  void t.test(`jwt-svid – ${jwtKeyType}: a minted token validates against the bundle; header has alg ${alg}, kid and typ JWT`, async t => {
    const ca = await openCa(t, { jwtKeyType })
    const { token, expiresAt } = await ca.mintJwtSvid({ spiffeId: workload, audience: ['billing', 'audit'] })
    const svid = await validateJwtSvid(token, ca.bundle(), 'audit')
    t.equal(svid.id.toString(), workload.toString())
    t.same(svid.audience, ['billing', 'audit'])
    t.same(svid.expiresAt, expiresAt)
    const header = decodeProtectedHeader(token)
    t.same(header, { alg, kid: ca.status().jwt[0].kid, typ: 'JWT' })
    t.ok(ca.bundle().jwt.findKey(header.kid ?? '') !== undefined, 'the kid is in the bundle')
    const claims = decodeJwt(token)
    t.same(Object.keys(claims).sort(), ['aud', 'exp', 'iat', 'sub'])
    t.equal((claims.exp ?? 0) - (claims.iat ?? 0), 300, 'default TTL 5 min')
  })
}

void t.test('jwt-svid – a single audience is still a list; per-request TTL; never past the key\'s NotAfter', async t => {
  const clock = new ManualClock()
  const ca = await openCa(t, { clock: clock.read, caTtlSeconds: 3600 })
  const one = await ca.mintJwtSvid({ spiffeId: workload, audience: ['only'], ttlSeconds: 42 })
  t.same(decodeJwt(one.token).aud, ['only'])
  t.equal(one.expiresAt.getTime(), clock.now.getTime() + 42_000)
  const keyEnd = ca.status().jwt[0].notAfter
  const capped = await ca.mintJwtSvid({ spiffeId: workload, audience: ['a'], ttlSeconds: 86400 })
  t.same(capped.expiresAt, keyEnd)
  await t.resolves(validateJwtSvid(capped.token, ca.bundle(), 'a', { now: new Date(keyEnd.getTime() - 1000) }))
  await t.rejects(validateJwtSvid(one.token, ca.bundle(), 'only', { now: clock.advance(43) }), { code: 'ERR_JWT_SVID_EXPIRED' })
})

void t.test('jwt-svid – bad requests are refused with ERR_CA_REQUEST_INVALID', async t => {
  const ca = await openCa(t)
  const cases: Array<[string, Parameters<typeof ca.mintJwtSvid>[0], RegExp]> = [
    ['no audience', { spiffeId: workload, audience: [] }, /audience must be a non-empty list/],
    ['empty audience', { spiffeId: workload, audience: [''] }, /audience/],
    ['audience not a list', { spiffeId: workload, audience: 'a' as unknown as string[] }, /audience/],
    ['another trust domain', { spiffeId: parseSpiffeId('spiffe://other.example/api'), audience: ['a'] }, /not in trust domain/],
    ['negative TTL', { spiffeId: workload, audience: ['a'], ttlSeconds: -5 }, /ttlSeconds must be a positive whole number/]
  ]
  for (const [name, request, message] of cases) {
    await t.rejects(ca.mintJwtSvid(request), { code: 'ERR_CA_REQUEST_INVALID', message }, name)
  }
})
