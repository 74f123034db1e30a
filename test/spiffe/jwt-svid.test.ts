import t from 'tap'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { EncryptJWT, SignJWT, generateKeyPair } from 'jose'
import type { JWK, JWTHeaderParameters, KeyInput } from 'jose'
import { validateJwtSvid } from '../../spiffe/jwt-svid'
import type { ValidateJwtSvidOptions } from '../../spiffe/jwt-svid'
import { JwtBundle } from '../../spiffe/jwt-bundle'
import { JwtSvidError } from '../../spiffe/errors'
import type { JwtSvidErrorCode } from '../../spiffe/errors'
import { parseTrustDomain } from '../../spiffe/id'
import type { JwtBundleSource } from '../../spiffe/bundle-source'

const NOW = new Date('2030-01-01T00:00:00Z')
const nowSeconds = NOW.getTime() / 1000

function keyPair (type: 'ec' | 'rsa', namedCurve = 'P-256'): { privateKey: KeyObject, jwk: JWK } {
  const { privateKey, publicKey } = type === 'ec'
    ? generateKeyPairSync('ec', { namedCurve })
    : generateKeyPairSync('rsa', { modulusLength: 2048 })
  return { privateKey, jwk: publicKey.export({ format: 'jwk' }) }
}

const a256 = keyPair('ec', 'P-256')
const a384 = keyPair('ec', 'P-384')
const a521 = keyPair('ec', 'P-521')
const aRsa = keyPair('rsa')
const aShared = keyPair('ec')
const b256 = keyPair('ec')
const bShared = keyPair('ec')

const tdA = parseTrustDomain('td-a')
const tdB = parseTrustDomain('td-b')
const bundleA = new JwtBundle(tdA)
for (const [kid, key] of [['a256', a256], ['a384', a384], ['a521', a521], ['rsa', aRsa], ['shared', aShared]] as const) {
  bundleA.addKey(kid, key.jwk)
}
const bundleB = new JwtBundle(tdB)
bundleB.addKey('b256', b256.jwk)
bundleB.addKey('shared', bShared.jwk)

const source: JwtBundleSource = { getJwtBundle: td => [bundleA, bundleB].find(bundle => bundle.trustDomain.equals(td)) }

/** How to make a test token: changes to a valid ES256 JWT-SVID for spiffe://td-a/web; `undefined` removes a member. */
interface Mint {
  header?: Record<string, unknown>
  claims?: Record<string, unknown>
  key?: KeyInput
}

async function mint ({ header = {}, claims = {}, key = a256.privateKey }: Mint = {}): Promise<string> {
  const fullHeader = { alg: 'ES256', kid: 'a256', typ: 'JWT', ...header } as JWTHeaderParameters
  // jose signs a "crit" header only when told the extensions are understood.
  const crit = fullHeader.crit === undefined ? undefined : Object.fromEntries(fullHeader.crit.map(name => [name, true]))
  return await new SignJWT({ sub: 'spiffe://td-a/web', aud: 'api', iat: nowSeconds, exp: nowSeconds + 300, ...claims })
    .setProtectedHeader(fullHeader)
    .sign(key, { crit })
}

function validate (token: string, audience: string | string[] = 'api', options: ValidateJwtSvidOptions = {}, bundles = source) {
  return validateJwtSvid(token, bundles, audience, { now: NOW, ...options })
}

/** The JwtSvidError a validation rejects with; fails when it resolves or rejects with anything else. */
async function rejection (validation: Promise<unknown>): Promise<JwtSvidError> {
  try {
    await validation
  } catch (err) {
    if (err instanceof JwtSvidError) return err
    throw err
  }
  throw new Error('expected a JwtSvidError, the token was accepted')
}

/** Asserts that `good` is accepted and `bad` rejected with `code` and a message matching `message`. */
async function contrast (
  t: tap.Test, good: Promise<unknown>, bad: Promise<unknown>, code: JwtSvidErrorCode, message: RegExp
): Promise<JwtSvidError> {
  const [accepted, err] = await Promise.all([good, rejection(bad)])
  t.ok(accepted, 'the token without the defect is accepted')
  t.equal(err.code, code)
  t.match(err.message, message)
  return err
}

function b64url (value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')
}

void t.test('jwt-svid – returns the identity, audience, times and verified claims of a valid token', async t => {
  const token = await mint({ claims: { aud: ['api', 'metrics'], extra: 'x' } })
  const svid = await validate(token, 'metrics')
  t.equal(svid.id.toString(), 'spiffe://td-a/web')
  t.same(svid.audience, ['api', 'metrics'])
  t.same(svid.expiresAt, new Date(NOW.getTime() + 300_000))
  t.same(svid.issuedAt, NOW)
  t.equal(svid.claims.extra, 'x')
  t.equal(svid.token, token)
  t.same((await validate(await mint({ claims: { iat: undefined } }))).issuedAt, undefined, 'iat is optional')
})

void t.test('jwt-svid – accepts every JWT-SVID algorithm with a key of its type', async t => {
  const cases: Array<[string, string, KeyObject]> = [
    ['ES256', 'a256', a256.privateKey], ['ES384', 'a384', a384.privateKey], ['ES512', 'a521', a521.privateKey],
    ...['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'].map(alg => [alg, 'rsa', aRsa.privateKey] as [string, string, KeyObject])
  ]
  for (const [alg, kid, key] of cases) {
    const svid = await validate(await mint({ header: { alg, kid }, key }))
    t.equal(svid.id.toString(), 'spiffe://td-a/web', alg)
  }
})

void t.test('jwt-svid – ERR_JWT_SVID_MALFORMED: anything but a decodable JWS compact token', async t => {
  const good = await mint()
  const [header, payload, signature] = good.split('.')
  const jwe = await new EncryptJWT({ sub: 'spiffe://td-a/web', aud: 'api', exp: nowSeconds + 300 })
    .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' }).encrypt(randomBytes(32))
  const broken: Array<[string, RegExp]> = [
    [jwe, /is a JWE/],
    [`${header}.${payload}`, /compact serialization/],
    [`${good}.x`, /compact serialization/],
    [`${good}=`, /compact serialization/],
    [`${b64url('not json')}.${payload}.${signature}`, /cannot be decoded/],
    [`${header}.${b64url([1, 2])}.${signature}`, /cannot be decoded/],
    [42 as unknown as string, /must be a string/],
    [await mint({ claims: { aud: 7 } }), /"aud" must be a string or a list of strings/],
    [await mint({ claims: { exp: 'tomorrow' } }), /"exp" must be a number/],
    // Refused by jose once the signature verified: our code, jose's error as the cause.
    [await mint({ claims: { iat: 'yesterday' } }), /"iat" claim must be a number/],
    [await mint({ header: { crit: ['x-ext'], 'x-ext': 1 } }), /"x-ext" is not recognized/]
  ]
  t.ok(await validate(good))
  for (const [token, message] of broken) {
    const err = await rejection(validate(token))
    t.equal(err.code, 'ERR_JWT_SVID_MALFORMED', String(message))
    t.match(err.message, message)
  }
})

void t.test('jwt-svid – ERR_JWT_SVID_ALG_UNSUPPORTED: none, HS256 and EdDSA are rejected, naming the alg', async t => {
  const good = await mint()
  const [, payload] = good.split('.')
  const unsecured = `${b64url({ alg: 'none', kid: 'a256', typ: 'JWT' })}.${payload}.`
  const hs256 = await mint({ header: { alg: 'HS256' }, key: randomBytes(32) })
  const ed = await generateKeyPair('EdDSA')
  const eddsa = await mint({ header: { alg: 'EdDSA' }, key: ed.privateKey })
  for (const [bad, alg] of [[unsecured, 'none'], [hs256, 'HS256'], [eddsa, 'EdDSA']]) {
    await contrast(t, validate(good), validate(bad), 'ERR_JWT_SVID_ALG_UNSUPPORTED', new RegExp(`alg "${alg}" is not allowed`))
  }
})

void t.test('jwt-svid – ERR_JWT_SVID_TYP_INVALID: typ JWT, JOSE or none accepted, at+jwt rejected', async t => {
  for (const typ of ['JOSE', undefined]) t.ok(await validate(await mint({ header: { typ } })), `typ ${typ}`)
  await contrast(t, validate(await mint({ header: { typ: 'JWT' } })), validate(await mint({ header: { typ: 'at+jwt' } })),
    'ERR_JWT_SVID_TYP_INVALID', /typ "at\+jwt" is not allowed/)
})

void t.test('jwt-svid – ERR_JWT_SVID_KID_MISSING: a token without kid is rejected', async t => {
  await contrast(t, validate(await mint()), validate(await mint({ header: { kid: undefined } })),
    'ERR_JWT_SVID_KID_MISSING', /no "kid"/)
})

void t.test('jwt-svid – ERR_JWT_SVID_SUB_INVALID: sub missing or not a SPIFFE ID, with the parser\'s reason', async t => {
  const good = validate(await mint())
  await contrast(t, good, validate(await mint({ claims: { sub: undefined } })), 'ERR_JWT_SVID_SUB_INVALID', /no "sub" claim/)
  const err = await contrast(t, good, validate(await mint({ claims: { sub: 'spiffe://TD-A/web' } })),
    'ERR_JWT_SVID_SUB_INVALID', /not a SPIFFE ID: .*trust domains must be lowercase/)
  t.match(err.cause, { code: 'ERR_SPIFFE_ID_INVALID' })
})

void t.test('jwt-svid – ERR_JWT_SVID_NO_BUNDLE: no bundle for the subject\'s trust domain', async t => {
  await contrast(t, validate(await mint()), validate(await mint({ claims: { sub: 'spiffe://td-c/web' } })),
    'ERR_JWT_SVID_NO_BUNDLE', /no JWT bundle for trust domain "td-c"/)
})

void t.test('jwt-svid – ERR_JWT_SVID_NO_BUNDLE: a source answering with another trust domain\'s bundle is not trusted', async t => {
  // This source answers every trust domain with td-b's bundle, which holds the very key that signed both tokens.
  const confused: JwtBundleSource = { getJwtBundle: () => bundleB }
  const signedByB = { header: { kid: 'b256' }, key: b256.privateKey }
  await contrast(t, validate(await mint({ ...signedByB, claims: { sub: 'spiffe://td-b/web' } }), 'api', {}, confused),
    validate(await mint(signedByB), 'api', {}, confused), 'ERR_JWT_SVID_NO_BUNDLE', /no JWT bundle for trust domain "td-a"/)
})

void t.test('jwt-svid – ERR_JWT_SVID_KEY_NOT_FOUND: kid not in the bundle', async t => {
  await contrast(t, validate(await mint()), validate(await mint({ header: { kid: 'gone' } })),
    'ERR_JWT_SVID_KEY_NOT_FOUND', /"td-a" has no JWT authority with kid "gone"/)
})

void t.test('jwt-svid – ERR_JWT_SVID_BAD_SIGNATURE: rejects a tampered payload', async t => {
  const good = await mint()
  const [header, , signature] = good.split('.')
  const forged = b64url({ sub: 'spiffe://td-a/admin', aud: 'api', iat: nowSeconds, exp: nowSeconds + 300 })
  await contrast(t, validate(good), validate(`${header}.${forged}.${signature}`), 'ERR_JWT_SVID_BAD_SIGNATURE', /does not verify/)
})

void t.test('jwt-svid – ERR_JWT_SVID_BAD_SIGNATURE: rejects a token signed by another trust domain\'s key', async t => {
  // kid "shared" exists in both bundles; the key must come from the bundle of td-a, the subject's trust domain.
  const asA = { header: { kid: 'shared' } }
  await contrast(t, validate(await mint({ ...asA, key: aShared.privateKey })),
    validate(await mint({ ...asA, key: bShared.privateKey })), 'ERR_JWT_SVID_BAD_SIGNATURE', /does not verify with key "shared" of "td-a"/)
  t.ok(await validate(await mint({ ...asA, claims: { sub: 'spiffe://td-b/web' }, key: bShared.privateKey })),
    'the same token is genuine for a td-b subject')
})

void t.test('jwt-svid – ERR_JWT_SVID_BAD_SIGNATURE: the header alg must suit the trusted key', async t => {
  await contrast(t, validate(await mint({ header: { alg: 'RS256', kid: 'rsa' }, key: aRsa.privateKey })),
    validate(await mint({ header: { alg: 'ES256', kid: 'rsa' } })), 'ERR_JWT_SVID_BAD_SIGNATURE',
    /key "rsa" of "td-a" is an RSA key; it cannot verify an ES256 signature/)
  await contrast(t, validate(await mint()), validate(await mint({ header: { alg: 'ES384' }, key: a384.privateKey })),
    'ERR_JWT_SVID_BAD_SIGNATURE', /is an EC P-256 key; it cannot verify an ES384 signature \(needs EC P-384\)/)
})

void t.test('jwt-svid – ERR_JWT_SVID_AUD_MISSING: no aud, or an empty list', async t => {
  const good = validate(await mint())
  await contrast(t, good, validate(await mint({ claims: { aud: undefined } })), 'ERR_JWT_SVID_AUD_MISSING', /no "aud" claim/)
  await contrast(t, good, validate(await mint({ claims: { aud: [] } })), 'ERR_JWT_SVID_AUD_MISSING', /no "aud" claim/)
})

void t.test('jwt-svid – ERR_JWT_SVID_AUD_MISMATCH: one expected audience must be in aud, lists on both sides', async t => {
  const token = await mint({ claims: { aud: ['billing', 'reports'] } })
  t.ok(await validate(token, 'reports'))
  t.ok(await validate(token, ['api', 'billing']))
  t.ok(await validate(await mint(), ['other', 'api']))
  await contrast(t, validate(token, ['api', 'reports']), validate(token, ['api', 'metrics']),
    'ERR_JWT_SVID_AUD_MISMATCH', /audience \["billing","reports"\], none of the expected \["api","metrics"\]/)
})

void t.test('jwt-svid – ERR_JWT_SVID_EXP_MISSING: a token without exp is rejected', async t => {
  await contrast(t, validate(await mint()), validate(await mint({ claims: { exp: undefined } })),
    'ERR_JWT_SVID_EXP_MISSING', /no "exp" claim/)
})

void t.test('jwt-svid – ERR_JWT_SVID_EXPIRED: no clock skew unless allowed', async t => {
  await contrast(t, validate(await mint({ claims: { exp: nowSeconds + 1 } })), validate(await mint({ claims: { exp: nowSeconds } })),
    'ERR_JWT_SVID_EXPIRED', /expired at 2030-01-01T00:00:00.000Z/)
  const late = await mint({ claims: { exp: nowSeconds - 5 } })
  await contrast(t, validate(late, 'api', { clockToleranceSeconds: 6 }), validate(late, 'api', { clockToleranceSeconds: 5 }),
    'ERR_JWT_SVID_EXPIRED', /expired/)
})

void t.test('jwt-svid – an expired token with a bad signature is reported as a bad signature', async t => {
  const [header, payload] = (await mint({ claims: { exp: nowSeconds - 60 } })).split('.')
  const [, , otherSignature] = (await mint()).split('.')
  const err = await rejection(validate(`${header}.${payload}.${otherSignature}`))
  t.equal(err.code, 'ERR_JWT_SVID_BAD_SIGNATURE')
})

void t.test('jwt-svid – ERR_JWT_SVID_NOT_YET_VALID: a token used before its nbf', async t => {
  const early = await mint({ claims: { nbf: nowSeconds + 60 } })
  await contrast(t, validate(await mint({ claims: { nbf: nowSeconds } })), validate(early),
    'ERR_JWT_SVID_NOT_YET_VALID', /not valid yet/)
  t.ok(await validate(early, 'api', { clockToleranceSeconds: 60 }), 'within the allowed clock skew')
})

void t.test('jwt-svid – a caller without an expected audience or with bad options gets a TypeError', async t => {
  const token = await mint()
  for (const audience of ['', [], ['api', '']]) {
    await t.rejects(validate(token, audience), TypeError, JSON.stringify(audience))
  }
  await t.rejects(validate(token, 'api', { clockToleranceSeconds: -1 }), TypeError)
  await t.rejects(validate(token, 'api', { now: new Date(NaN) }), TypeError)
})
