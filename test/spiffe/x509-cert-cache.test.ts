import t from 'tap'
import { createTestCa } from '../../certs-test/pki'
import { PARSE_CACHE_LIMIT, isSignedBy, parseCertificateCached } from '../../spiffe/x509-cert-cache'
import { parseTrustDomain } from '../../spiffe/id'
import { X509Bundle } from '../../spiffe/x509-bundle'
import { verifyX509Svid } from '../../spiffe/x509-svid'

const root = createTestCa('td-a.test')
const bundleOf = (...ders: Buffer[]): X509Bundle => new X509Bundle(parseTrustDomain('td-a.test'), ders)

void t.test('cert cache – the same bytes give the same parsed certificate; the cache stays bounded', async t => {
  const svid = root.issueSvid('spiffe://td-a.test/api')
  const first = parseCertificateCached(svid.chain[0])
  t.equal(parseCertificateCached(Buffer.from(svid.chain[0])), first, 'a copy of the bytes hits')
  t.equal(parseCertificateCached(svid.leaf), first, 'an X509Certificate of the same bytes hits')
  const pem = Buffer.from(svid.chain[0])
  pem[pem.length - 1] ^= 1
  t.not(parseCertificateCached(pem), first, 'one changed byte is another certificate')
  const others = Array.from({ length: PARSE_CACHE_LIMIT }, (_, i) => root.issueSvid(`spiffe://td-a.test/w${i}`).chain[0])
  for (const der of others) parseCertificateCached(der)
  t.not(parseCertificateCached(svid.chain[0]), first, 'the least recently used entry was evicted')
})

void t.test('cert cache – remembered signatures never outlive trust: removing the authority untrusts at once', async t => {
  const svid = root.issueSvid('spiffe://td-a.test/api')
  const bundle = bundleOf(root.certDer)
  t.equal(String(verifyX509Svid(svid.chain, bundle)), 'spiffe://td-a.test/api')
  t.equal(String(verifyX509Svid(svid.chain, bundle)), 'spiffe://td-a.test/api', 'again, from the cache')
  bundle.removeAuthority(root.cert)
  t.throws(() => verifyX509Svid(svid.chain, bundle), { code: 'ERR_X509_SVID_UNTRUSTED' })
  const impostor = createTestCa('td-a.test')
  t.throws(() => verifyX509Svid(svid.chain, bundleOf(impostor.certDer)), { code: 'ERR_X509_SVID_UNTRUSTED' })
})

void t.test('cert cache – isSignedBy answers per issuer, and the same answer twice', async t => {
  const other = createTestCa('td-a.test', { name: 'other' })
  const leaf = parseCertificateCached(root.issueSvid('spiffe://td-a.test/api').chain[0])
  const rootCert = parseCertificateCached(root.certDer)
  const otherCert = parseCertificateCached(other.certDer)
  t.equal(isSignedBy(leaf, rootCert), true)
  t.equal(isSignedBy(leaf, otherCert), false)
  t.equal(isSignedBy(leaf, rootCert), true)
  t.equal(isSignedBy(leaf, otherCert), false)
})
