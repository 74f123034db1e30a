import t from 'tap'
import { generateKeyPairSync } from 'node:crypto'
import type { JWK } from 'jose'
import { JwtBundle } from '../../spiffe/jwt-bundle'
import { thrown } from '../helpers/errors'
import { parseTrustDomain } from '../../spiffe/id'

const td = parseTrustDomain('example.org')

/** A key pair's JWKs, as a bundle would publish (public) or a careless operator might paste (private). */
function ecJwks (namedCurve = 'P-256'): { pub: JWK, priv: JWK } {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve })
  return { pub: publicKey.export({ format: 'jwk' }), priv: privateKey.export({ format: 'jwk' }) }
}

function rsaJwk (modulusLength: number): JWK {
  return generateKeyPairSync('rsa', { modulusLength }).publicKey.export({ format: 'jwk' })
}

const ec256 = ecJwks('P-256')
const ec384 = ecJwks('P-384')
const rsa = rsaJwk(2048)


void t.test('jwt-bundle – reads EC and RSA JWT authorities by kid, from JSON text or an object', t => {
  const jwks = { keys: [{ use: 'jwt-svid', kid: 'a', ...ec256.pub }, { kid: 'b', ...ec384.pub }, { use: 'jwt-svid', kid: 'c', ...rsa }] }
  for (const input of [jwks, JSON.stringify(jwks)]) {
    const bundle = JwtBundle.fromJwks(td, input)
    t.equal(bundle.size, 3)
    t.same([...bundle.keys.keys()], ['a', 'b', 'c'])
    t.same(bundle.findKey('a'), ec256.pub, 'keeps the public members')
    t.same(bundle.findKey('c'), rsa)
    t.equal(bundle.findKey('nope'), undefined)
  }
  t.end()
})

void t.test('jwt-bundle – keeps only the public members of a key, frozen', t => {
  const bundle = JwtBundle.fromJwks(td, { keys: [{ use: 'jwt-svid', kid: 'a', alg: 'ES256', x5t: 'abc', ...ec256.pub }] })
  const key = bundle.findKey('a')
  t.same(Object.keys(key ?? {}).sort(), ['crv', 'kty', 'x', 'y'])
  t.ok(Object.isFrozen(key))
  t.end()
})

void t.test('jwt-bundle – serves only its own trust domain', t => {
  const bundle = new JwtBundle(td)
  t.equal(bundle.getJwtBundle(parseTrustDomain('example.org')), bundle)
  t.equal(bundle.getJwtBundle(parseTrustDomain('other.org')), undefined)
  t.end()
})

void t.test('jwt-bundle – ignores keys meant for another SVID type or of a type JWT-SVIDs cannot use', t => {
  const ed25519 = generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' })
  const bundle = JwtBundle.fromJwks(td, {
    keys: [
      { use: 'x509-svid', x5c: ['MII...'], ...rsa },
      { use: 'something-new', kid: 'x', ...ec256.pub },
      { use: 'jwt-svid', kid: 'ed', ...ed25519 },
      { use: 'jwt-svid', kid: 'k256', ...ec256.pub, crv: 'secp256k1' },
      { use: 'jwt-svid', kid: 'kept', ...ec256.pub }
    ]
  })
  t.same([...bundle.keys.keys()], ['kept'])
  t.end()
})

void t.test('jwt-bundle – rejects a JWT authority without kid, naming the key index', t => {
  const ok = JwtBundle.fromJwks(td, { keys: [{ kid: 'a', ...ec256.pub }, { kid: 'b', ...ec384.pub }] })
  t.equal(ok.size, 2)
  const err = thrown(() => JwtBundle.fromJwks(td, { keys: [{ kid: 'a', ...ec256.pub }, { ...ec384.pub }] }))
  t.equal(err.code, 'ERR_BUNDLE_INVALID')
  t.match(err.message, /bundle key 1 has no "kid"/)
  t.end()
})

void t.test('jwt-bundle – rejects a repeated kid', t => {
  t.equal(JwtBundle.fromJwks(td, { keys: [{ kid: 'a', ...ec256.pub }, { kid: 'b', ...ec384.pub }] }).size, 2)
  const err = thrown(() => JwtBundle.fromJwks(td, { keys: [{ kid: 'a', ...ec256.pub }, { kid: 'a', ...ec384.pub }] }))
  t.equal(err.code, 'ERR_BUNDLE_INVALID')
  t.match(err.message, /bundle key 1 repeats the key ID "a"/)
  t.end()
})

void t.test('jwt-bundle – rejects private key material', t => {
  t.equal(JwtBundle.fromJwks(td, { keys: [{ kid: 'a', ...ec256.pub }] }).size, 1)
  const err = thrown(() => JwtBundle.fromJwks(td, { keys: [{ kid: 'a', ...ec256.priv }] }))
  t.equal(err.code, 'ERR_BUNDLE_INVALID')
  t.match(err.message, /bundle key 0 holds private key material/)
  const secret = thrown(() => JwtBundle.fromJwks(td, { keys: [{ kid: 's', kty: 'oct', k: 'c2VjcmV0' }] }))
  t.match(secret.message, /bundle key 0 holds private key material/, 'a shared secret is private too')
  t.end()
})

void t.test('jwt-bundle – rejects a key Node cannot import, or an RSA key under 2048 bits', t => {
  const offCurve = { ...ec256.pub, x: ec384.pub.x }
  const err = thrown(() => JwtBundle.fromJwks(td, { keys: [{ kid: 'a', ...offCurve }] }))
  t.equal(err.code, 'ERR_BUNDLE_INVALID')
  t.match(err.message, /bundle key 0 is not a usable EC public key/)
  t.ok(err.cause, 'keeps the import error as cause')
  const weak = thrown(() => JwtBundle.fromJwks(td, { keys: [{ kid: 'r', ...rsaJwk(1024) }] }))
  t.match(weak.message, /bundle key 0 is a 1024-bit RSA key; at least 2048 bits are required/)
  t.end()
})

void t.test('jwt-bundle – rejects a document that is not a JWK Set', t => {
  for (const [input, message] of [
    ['{not json', /not valid JSON/],
    ['{}', /"keys" array/],
    [{ keys: {} }, /"keys" array/],
    [[], /"keys" array/],
    [{ keys: ['x'] }, /bundle key 0 is not a JSON object/],
    [{ keys: [{ kid: 'a' }] }, /bundle key 0 has no "kty"/]
  ] as Array<[string | object, RegExp]>) {
    const err = thrown(() => JwtBundle.fromJwks(td, input))
    t.equal(err.code, 'ERR_BUNDLE_INVALID')
    t.match(err.message, message)
  }
  t.equal(JwtBundle.fromJwks(td, { keys: [] }).size, 0, 'an empty key list is allowed')
  t.end()
})

void t.test('jwt-bundle – addKey adds or replaces, removeKey removes', t => {
  const bundle = new JwtBundle(td)
  bundle.addKey('a', ec256.pub)
  t.same(bundle.findKey('a'), ec256.pub)
  bundle.addKey('a', ec384.pub)
  t.same(bundle.findKey('a'), ec384.pub, 'replaced')
  t.equal(bundle.size, 1)
  t.equal(bundle.removeKey('a'), true)
  t.equal(bundle.removeKey('a'), false)
  t.equal(bundle.size, 0)
  t.end()
})

void t.test('jwt-bundle – addKey checks the key like a bundle key', t => {
  const bundle = new JwtBundle(td)
  t.match(thrown(() => bundle.addKey('a', ec256.priv)).message, /holds private key material/)
  t.match(thrown(() => bundle.addKey('a', { ...ec256.pub, use: 'x509-svid' })).message, /is not a JWT authority/)
  t.match(thrown(() => bundle.addKey('', ec256.pub)).message, /non-empty key ID/)
  t.equal(bundle.size, 0)
  t.end()
})

void t.test('jwt-bundle – toJwks marks each key as a JWT authority and round-trips', t => {
  const bundle = JwtBundle.fromJwks(td, { keys: [{ kid: 'a', ...ec256.pub }, { kid: 'c', ...rsa }] })
  const jwks = bundle.toJwks()
  t.same(jwks, { keys: [{ use: 'jwt-svid', kid: 'a', ...ec256.pub }, { use: 'jwt-svid', kid: 'c', ...rsa }] })
  const again = JwtBundle.fromJwks(td, JSON.stringify(jwks))
  t.same([...again.keys], [...bundle.keys])
  t.end()
})
