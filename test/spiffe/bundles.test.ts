import t from 'tap'
import { X509Certificate, generateKeyPairSync } from 'node:crypto'
import { createTestCa } from '../../certs-test/pki'
import { parseTrustDomain } from '../../spiffe/id'
import { X509Bundle } from '../../spiffe/x509-bundle'
import { JwtBundle } from '../../spiffe/jwt-bundle'
import { SpiffeBundle } from '../../spiffe/spiffe-bundle'
import { BundleSet } from '../../spiffe/bundle-set'
import { encodePem } from '../../spiffe/pem'
import { thrown } from '../helpers/errors'

const tdA = parseTrustDomain('td-a.test')
const tdB = parseTrustDomain('td-b.test')
const caA = createTestCa('td-a.test')
const caA2 = createTestCa('td-a.test', { keyType: 'rsa-2048' })
const caB = createTestCa('td-b.test')

function jwtKey (kid: string): Record<string, unknown> {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return { ...publicKey.export({ format: 'jwk' }), kid, use: 'jwt-svid' }
}


void t.test('x509 bundle – PEM and DER in and out, in order, without duplicates', async t => {
  const pem = caA.certPem + caA2.certPem
  const bundle = X509Bundle.fromPem(tdA, pem)
  t.equal(bundle.size, 2)
  t.equal(bundle.toPem(), encodePem('CERTIFICATE', [caA.certDer, caA2.certDer]))
  const fromDer = X509Bundle.fromDer(tdA, bundle.toDer())
  t.same(fromDer.authorities.map(c => c.fingerprint256), [caA.cert.fingerprint256, caA2.cert.fingerprint256])
  t.equal(Buffer.compare(fromDer.toDer(), Buffer.concat([caA.certDer, caA2.certDer])), 0, 'DER is the concatenation')
  bundle.addAuthority(caA.cert)
  t.equal(bundle.size, 2, 'adding an authority twice keeps one')
  t.ok(bundle.hasAuthority(new X509Certificate(caA2.certDer)))
  t.ok(bundle.removeAuthority(caA2.cert))
  t.notOk(bundle.hasAuthority(caA2.cert))
  t.equal(bundle.getX509Bundle(tdA), bundle, 'a bundle is the source of its own trust domain')
  t.equal(bundle.getX509Bundle(tdB), undefined, 'and of no other')
  t.equal(X509Bundle.fromPem(tdA, `comment line\n${caA.certPem}\ntrailing text`).size, 1, 'text around PEM blocks is ignored')
})

void t.test('x509 bundle – bad input is ERR_BUNDLE_INVALID naming the reason', async t => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const keyPem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
  const cases: Array<[string, () => unknown, RegExp]> = [
    ['empty PEM', () => X509Bundle.fromPem(tdA, ''), /no PEM certificates/],
    ['a private key', () => X509Bundle.fromPem(tdA, caA.certPem + keyPem), /unexpected PEM block "PRIVATE KEY"/],
    ['bad base64', () => X509Bundle.fromPem(tdA, '-----BEGIN CERTIFICATE-----\n@@@\n-----END CERTIFICATE-----'), /not valid base64/],
    ['garbage DER', () => X509Bundle.fromDer(tdA, Buffer.from([0x30, 0x82, 0xff])), /malformed DER/],
    ['truncated DER', () => X509Bundle.fromDer(tdA, caA.certDer.subarray(0, caA.certDer.length - 1)), /malformed DER/],
    ['non-certificate DER', () => X509Bundle.fromDer(tdA, Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01])), /certificate 0 is malformed/]
  ]
  for (const [name, fn, reason] of cases) {
    t.throws(fn, { code: 'ERR_BUNDLE_INVALID', message: reason }, name)
  }
})

void t.test('spiffe bundle – reads and writes the JWKS format with sequence and refresh hint', async t => {
  const doc = {
    keys: [
      { use: 'x509-svid', ...caA.cert.publicKey.export({ format: 'jwk' }), x5c: [caA.certDer.toString('base64')] },
      jwtKey('key-1'),
      { use: 'wit-svid', kty: 'EC', crv: 'P-256', x: 'unused', y: 'unused', kid: 'future' },
      { kty: 'OKP', crv: 'Ed25519', x: 'ignored-without-use' }
    ],
    spiffe_sequence: 7,
    spiffe_refresh_hint: 300
  }
  const bundle = SpiffeBundle.parse(tdA, JSON.stringify(doc))
  t.equal(bundle.x509.size, 1)
  t.equal(bundle.jwt.size, 1, 'keys of unknown use are ignored')
  t.equal(bundle.sequence, 7)
  t.equal(bundle.refreshHintSeconds, 300)
  const written = bundle.toJSON()
  t.equal(written.spiffe_sequence, 7)
  t.equal(written.spiffe_refresh_hint, 300)
  t.same(written.keys.map(k => (k as { use?: string }).use), ['x509-svid', 'jwt-svid'])
  t.same((written.keys[0] as { x5c: string[] }).x5c, [caA.certDer.toString('base64')])
  t.notOk('kid' in written.keys[0], 'x509-svid keys carry no kid')
  const again = SpiffeBundle.parse(tdA, bundle.marshal())
  t.same(again.toJSON(), written, 'round trip is stable')
  t.equal(again.getX509Bundle(tdA), again.x509)
  t.equal(again.getJwtBundle(tdA), again.jwt)
  t.equal(again.getX509Bundle(tdB), undefined)
  t.equal(again.getJwtBundle(tdB), undefined)
  const bare = SpiffeBundle.parse(tdA, { keys: [] })
  t.same(bare.toJSON(), { keys: [] }, 'an empty bundle is valid and omits the optional fields')
})

void t.test('spiffe bundle – malformed documents are ERR_BUNDLE_INVALID naming the reason', async t => {
  const x509Key = { use: 'x509-svid', kty: 'EC', x5c: [caA.certDer.toString('base64')] }
  const cases: Array<[string, unknown, RegExp]> = [
    ['not JSON', '{keys', /not valid JSON/],
    ['no keys', '{}', /"keys" array is required/],
    ['keys not an array', { keys: {} }, /"keys" array is required/],
    ['null key', { keys: [null] }, /key 0 is not an object/],
    ['x509 key without x5c', { keys: [{ use: 'x509-svid', kty: 'EC' }] }, /key 0 \(x509-svid\) must carry exactly one/],
    ['x509 key with two certs', { keys: [{ ...x509Key, x5c: [...x509Key.x5c, ...x509Key.x5c] }] }, /exactly one/],
    ['x509 key with a bad cert', { keys: [jwtKey('k'), { ...x509Key, x5c: ['AAAA'] }] }, /key 1 \(x509-svid\) holds a malformed certificate/],
    ['jwt key without kid', { keys: [{ ...jwtKey('x'), kid: undefined }] }, /kid/],
    ['negative sequence', { keys: [], spiffe_sequence: -1 }, /"spiffe_sequence" must be a non-negative integer/],
    ['string sequence', { keys: [], spiffe_sequence: '1' }, /"spiffe_sequence" must be a number/],
    ['fractional refresh hint', { keys: [], spiffe_refresh_hint: 1.5 }, /"spiffe_refresh_hint" must be a non-negative integer/]
  ]
  for (const [name, input, reason] of cases) {
    t.throws(() => SpiffeBundle.parse(tdA, input as object), { code: 'ERR_BUNDLE_INVALID', message: reason }, name)
  }
  t.throws(() => new SpiffeBundle(tdA, { x509: new X509Bundle(tdB) }), { code: 'ERR_BUNDLE_INVALID', message: /td-b\.test cannot be part of td-a\.test/ })
})

void t.test('bundle set – keyed by trust domain, never merged', async t => {
  const a = new SpiffeBundle(tdA, { x509: new X509Bundle(tdA, [caA.certDer]), jwt: JwtBundle.fromJwks(tdA, { keys: [jwtKey('a1')] }) })
  const b = new SpiffeBundle(tdB, { x509: new X509Bundle(tdB, [caB.certDer]) })
  const set = new BundleSet([a])
  set.set(b)
  t.equal(set.size, 2)
  t.equal(set.get(tdA), a)
  t.equal(set.getX509Bundle(tdB), b.x509)
  t.equal(set.getJwtBundle(tdA), a.jwt)
  t.same([...set.listX509Bundles()].map(x => x.trustDomain.name), ['td-a.test', 'td-b.test'])
  t.same([...set].map(x => x.trustDomain.name), ['td-a.test', 'td-b.test'])
  t.ok(set.delete(tdB))
  t.notOk(set.has(tdB))
  t.equal(set.getX509Bundle(tdB), undefined)
  t.equal(thrown(() => set.require(tdB)).code, 'ERR_BUNDLE_NOT_FOUND')
  t.equal(set.require(tdA), a)
  const replacement = new SpiffeBundle(tdA, { sequence: 2 })
  set.set(replacement)
  t.equal(set.get(tdA), replacement, 'set replaces the bundle of the same trust domain')
})
