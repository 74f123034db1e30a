import t from 'tap'
import { X509Certificate } from 'node:crypto'
import { buildCertMatrix } from '../../certs-test/matrix'
import type { CertFixture } from '../../certs-test/matrix'
import { createTestCa } from '../../certs-test/pki'
import { parseTrustDomain } from '../../spiffe/id'
import { X509Bundle } from '../../spiffe/x509-bundle'
import { SpiffeBundle } from '../../spiffe/spiffe-bundle'
import { BundleSet } from '../../spiffe/bundle-set'
import { MAX_CHAIN_LENGTH, verifyX509Svid, verifyX509SvidChain } from '../../spiffe/x509-svid'
import { X509SvidError } from '../../spiffe/errors'

function bundlesOf (fixture: CertFixture): BundleSet {
  return new BundleSet(Object.entries(fixture.bundles).map(([name, ders]) => {
    const td = parseTrustDomain(name)
    return new SpiffeBundle(td, { x509: new X509Bundle(td, ders) })
  }))
}

function outcome (fn: () => unknown): { code?: string, message?: string, value?: unknown } {
  try {
    return { value: fn() }
  } catch (err) {
    if (!(err instanceof X509SvidError)) throw err
    return { code: err.code, message: err.message }
  }
}

// The matrix is built for a moment far from the real clock, so validity must follow `now`, not Date.now().
const now = new Date('2031-06-01T12:00:00Z')
const matrix = buildCertMatrix(now)

for (const fixture of matrix) {
  void t.test(`x509-svid – ${fixture.name}: ${fixture.description}`, async t => {
    const result = outcome(() => verifyX509Svid(fixture.chain, bundlesOf(fixture), { now }))
    if ('id' in fixture.expect) {
      t.equal(result.code, undefined, `accepted (${result.message ?? ''})`)
      t.equal(String(result.value), fixture.expect.id)
    } else {
      t.equal(result.code, fixture.expect.code)
      t.match(result.message, fixture.expect.reason)
    }
  })
}

void t.test('x509-svid – trust comes only from the bundle of the ID\'s own trust domain', async t => {
  const valid = matrix.find(f => f.name === 'valid-ec-direct')
  if (valid === undefined) throw new Error('matrix lacks valid-ec-direct')
  const tdA = parseTrustDomain('td-a.test')
  const tdB = parseTrustDomain('td-b.test')
  // The right root, filed under the wrong trust domain: must not be found.
  const misfiled = new X509Bundle(tdB, valid.bundles['td-a.test'])
  t.equal(outcome(() => verifyX509Svid(valid.chain, new BundleSet([new SpiffeBundle(tdB, { x509: misfiled })]), { now })).code, 'ERR_X509_SVID_NO_BUNDLE')
  t.equal(outcome(() => verifyX509Svid(valid.chain, new X509Bundle(tdA, valid.bundles['td-b.test']), { now })).code, 'ERR_X509_SVID_UNTRUSTED',
    'a source without listX509Bundles reports plain untrusted')
  t.equal(String(verifyX509Svid(valid.chain, new X509Bundle(tdA, valid.bundles['td-a.test']), { now })), 'spiffe://td-a.test/valid-ec-direct',
    'a single X509Bundle is a source too')
})

void t.test('x509-svid – the verified chain runs from the leaf to the authority; extra and root certificates are harmless', async t => {
  const root = createTestCa('td-a.test')
  const middle = root.createIntermediate()
  const svid = middle.issueSvid('spiffe://td-a.test/api')
  const bundle = new X509Bundle(parseTrustDomain('td-a.test'), [root.certDer])
  const verified = verifyX509SvidChain([...svid.chain, createTestCa('td-z.test').certDer, root.certDer], bundle)
  t.same(verified.verifiedChain.map(c => c.fingerprint256), [svid.leaf, middle.cert, root.cert].map(c => c.fingerprint256))
  t.equal(verifyX509Svid(svid.chain.map(der => new X509Certificate(der)), bundle).toString(), 'spiffe://td-a.test/api', 'X509Certificate input works too')
  t.equal(outcome(() => verifyX509Svid([svid.chain[1], svid.chain[0]], bundle)).code, 'ERR_X509_SVID_ID_NO_PATH',
    'the first certificate is taken as the leaf: an intermediate (whose URI SAN is the trust domain ID) is refused')
})

void t.test('x509-svid – hostile input: empty, unparsable, overlong chains', async t => {
  const bundle = new X509Bundle(parseTrustDomain('td-a.test'))
  t.equal(outcome(() => verifyX509Svid([], bundle)).code, 'ERR_X509_SVID_MISSING')
  const garbage = outcome(() => verifyX509Svid([Buffer.from('not a certificate')], bundle))
  t.equal(garbage.code, 'ERR_X509_SVID_MALFORMED')
  t.match(garbage.message, /certificate 0 of the chain cannot be parsed/)
  const svid = createTestCa('td-a.test').issueSvid('spiffe://td-a.test/api')
  const long = outcome(() => verifyX509Svid(Array.from({ length: MAX_CHAIN_LENGTH + 1 }, () => svid.chain[0]), bundle))
  t.equal(long.code, 'ERR_X509_SVID_MALFORMED')
  t.match(long.message, /at most 16/)
  t.equal(outcome(() => verifyX509Svid(svid.chain, bundle)).code, 'ERR_X509_SVID_UNTRUSTED', 'an empty bundle trusts nothing')
})

void t.test('x509-svid – an expired authority in the bundle no longer vouches for anything', async t => {
  const start = new Date('2030-01-01T00:00:00Z')
  const root = createTestCa('td-a.test', { now: start, notAfter: new Date('2030-01-02T00:00:00Z') })
  const svid = root.issueSvid('spiffe://td-a.test/api', { now: start })
  const bundle = new X509Bundle(parseTrustDomain('td-a.test'), [root.certDer])
  t.equal(String(verifyX509Svid(svid.chain, bundle, { now: new Date('2030-01-01T00:30:00Z') })), 'spiffe://td-a.test/api')
  const later = outcome(() => verifyX509Svid(svid.chain, bundle, { now: new Date('2030-01-03T00:00:00Z') }))
  t.equal(later.code, 'ERR_X509_SVID_EXPIRED')
})
