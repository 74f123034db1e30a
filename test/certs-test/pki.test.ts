import t from 'tap'
import { createPrivateKey, createPublicKey, sign, verify, type X509Certificate } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createTestCa, toPem, type TestCa, type TestSvid } from '../../certs-test/pki'
import { certText, openssl, OPENSSL_MISSING } from '../helpers/openssl'

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1'
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2'
// Certificates hold whole seconds; building at a whole second makes validity exact.
const now = new Date(Math.floor(Date.now() / 1000) * 1000)
const secondsFromNow = (seconds: number): number => now.getTime() + seconds * 1000
const validity = (cert: X509Certificate): [number, number] => [Date.parse(cert.validFrom), Date.parse(cert.validTo)]

void t.test('test pki – a root CA is self-signed, cA, keyCertSign+cRLSign critical, names its trust domain, lives 24 h', t => {
  const ca = createTestCa('td-a.test', { now })
  t.ok(ca.cert.ca, 'cA=true')
  t.ok(ca.cert.checkIssued(ca.cert), 'issuer = subject')
  t.ok(ca.cert.verify(ca.cert.publicKey), 'signed with its own key')
  t.equal(ca.cert.subjectAltName, 'URI:spiffe://td-a.test')
  t.match(ca.cert.subject, /CN=td-a\.test Root CA/)
  t.same(validity(ca.cert), [secondsFromNow(-10), secondsFromNow(24 * 3600)])
  t.same(ca.chain, [], 'a root has no chain above it')
  t.equal(ca.certPem, toPem([ca.certDer]))
  const text = certText(ca.certDer)
  t.match(text, /Basic Constraints: critical\s+CA:TRUE\n/)
  t.match(text, /Key Usage: critical\s+Certificate Sign, CRL Sign\n/)
  t.end()
})

void t.test('test pki – an SVID has exactly the SPIRE shape', t => {
  const ca = createTestCa('td-a.test', { now })
  const svid = ca.issueSvid('spiffe://td-a.test/api', { now })
  t.equal(svid.id, 'spiffe://td-a.test/api')
  t.equal(svid.leaf.ca, false, 'cA=false')
  t.equal(svid.leaf.subjectAltName, 'URI:spiffe://td-a.test/api', 'exactly one URI SAN, the ID')
  t.same([...(svid.leaf.keyUsage ?? [])].sort(), [SERVER_AUTH, CLIENT_AUTH], 'EKU serverAuth + clientAuth') // Node's keyUsage lists EKU OIDs
  t.same(validity(svid.leaf), [secondsFromNow(-10), secondsFromNow(3600)], 'NotBefore 10 s back, 1 h TTL')
  t.ok(svid.leaf.checkIssued(ca.cert), 'issued by the CA')
  t.ok(svid.leaf.verify(ca.cert.publicKey), 'signed by the CA key')
  const text = certText(svid.chain[0])
  t.match(text, /Basic Constraints: critical\s+CA:FALSE\n/)
  t.match(text, /Key Usage: critical\s+Digital Signature, Key Encipherment, Key Agreement\n/)
  t.match(text, /Extended Key Usage: \s+TLS Web Server Authentication, TLS Web Client Authentication\n/)
  t.match(text, /Subject Alternative Name: \s+URI:spiffe:\/\/td-a\.test\/api\n/, 'SAN not critical: the subject is not empty')
  t.match(text, /Authority Key Identifier: \s+/)
  t.end()
})

void t.test('test pki – the chain is leaf first without the root; keyPem is the leaf key as PKCS#8', t => {
  const root = createTestCa('td-a.test', { now })
  const intermediate = root.createIntermediate({ now })
  const svid = intermediate.issueSvid('spiffe://td-a.test/api', { now, dnsNames: ['api.local'] })
  t.same(svid.chain, [svid.leaf.raw, intermediate.certDer])
  t.equal(svid.chainPem, toPem(svid.chain))
  t.equal(svid.leaf.subjectAltName, 'URI:spiffe://td-a.test/api, DNS:api.local')
  t.match(svid.keyPem, /^-----BEGIN PRIVATE KEY-----\n/)
  const signature = sign('sha256', Buffer.from('proof'), createPrivateKey(svid.keyPem))
  t.ok(verify('sha256', Buffer.from('proof'), svid.leaf.publicKey, signature), 'keyPem matches the leaf')
  t.same(createPublicKey(svid.key).export({ type: 'spki', format: 'der' }), svid.leaf.publicKey.export({ type: 'spki', format: 'der' }))
  t.end()
})

void t.test('test pki – EC P-256 by default, RSA-2048 on request, for CAs and SVIDs alike', t => {
  const ec = createTestCa('td-a.test', { now })
  const rsa = createTestCa('td-a.test', { now, keyType: 'rsa-2048' })
  t.same(ec.cert.publicKey.asymmetricKeyDetails, { namedCurve: 'prime256v1' })
  t.equal(rsa.cert.publicKey.asymmetricKeyDetails?.modulusLength, 2048)
  t.equal(rsa.issueSvid('spiffe://td-a.test/a').leaf.publicKey.asymmetricKeyType, 'ec', 'SVIDs default to EC under an RSA CA')
  const rsaSvid = ec.issueSvid('spiffe://td-a.test/a', { keyType: 'rsa-2048' })
  t.equal(rsaSvid.leaf.publicKey.asymmetricKeyDetails?.modulusLength, 2048)
  t.ok(rsaSvid.leaf.verify(ec.cert.publicKey))
  t.match(certText(rsa.issueSvid('spiffe://td-a.test/a').chain[0]), /Signature Algorithm: sha256WithRSAEncryption/)
  t.match(certText(rsaSvid.chain[0]), /Signature Algorithm: ecdsa-with-SHA256/)
  t.end()
})

void t.test('test pki – intermediates are CAs of the trust domain, each issued by its parent, chained without the root', t => {
  const root = createTestCa('td-a.test', { now })
  const first = root.createIntermediate({ now })
  const second = first.createIntermediate({ now, keyType: 'rsa-2048' })
  for (const [ca, parent] of [[first, root], [second, first]] as Array<[TestCa, TestCa]>) {
    t.ok(ca.cert.ca, `${ca.cert.subject} is a CA`)
    t.equal(ca.cert.subjectAltName, 'URI:spiffe://td-a.test')
    t.ok(ca.cert.checkIssued(parent.cert) && ca.cert.verify(parent.cert.publicKey), 'issued and signed by its parent')
    t.notOk(ca.cert.checkIssued(ca.cert), 'not self-issued: names differ')
  }
  t.same(first.chain, [first.certDer])
  t.same(second.chain, [second.certDer, first.certDer])
  t.match(certText(second.certDer), /Key Usage: critical\s+Certificate Sign, CRL Sign\n/)
  t.end()
})

void t.test('test pki – NotAfter never passes the issuer\'s, whatever TTL is asked', t => {
  const root = createTestCa('td-a.test', { now, notAfter: new Date(secondsFromNow(1800)) })
  const intermediate = root.createIntermediate({ now, notAfter: new Date(secondsFromNow(7200)) })
  t.equal(intermediate.cert.validTo, root.cert.validTo, 'intermediate clamped to the root')
  t.equal(root.issueSvid('spiffe://td-a.test/a', { now, ttlSeconds: 86400 }).leaf.validTo, root.cert.validTo, 'ttlSeconds clamped')
  t.equal(root.issueSvid('spiffe://td-a.test/a', { now, notAfter: new Date(secondsFromNow(7200)) }).leaf.validTo, root.cert.validTo, 'notAfter clamped')
  const short = root.issueSvid('spiffe://td-a.test/a', { now, ttlSeconds: 60 })
  t.same(validity(short.leaf), [secondsFromNow(-10), secondsFromNow(60)], 'a shorter TTL is kept')
  const later = new Date(secondsFromNow(-600))
  t.same(validity(root.issueSvid('spiffe://td-a.test/a', { now, notBefore: later }).leaf)[0], later.getTime(), 'explicit notBefore')
  t.end()
})

void t.test('test pki – override builds what the options never would, for deliberately broken certificates', t => {
  const root = createTestCa('td-a.test', { now })
  const broken = root.issueSvid('spiffe://td-a.test/a', { now, override: { basicConstraints: { cA: true, critical: true }, uris: ['https://x.test/'] } })
  // Not broken.leaf.ca: Node's `ca` is OpenSSL's X509_check_ca, false for cA=true without keyCertSign.
  t.match(certText(broken.chain[0]), /Basic Constraints: critical\s+CA:TRUE\n/)
  t.equal(broken.leaf.subjectAltName, 'URI:https://x.test/')
  const renamed = root.createIntermediate({ now, override: { subject: { commonName: 'Renamed' } } })
  t.ok(renamed.issueSvid('spiffe://td-a.test/a', { now }).leaf.checkIssued(renamed.cert), 'children name an overridden subject as issuer')
  t.end()
})

void t.test('test pki – nothing is cached: every CA and SVID gets a fresh key', t => {
  const a = createTestCa('td-a.test')
  const b = createTestCa('td-a.test')
  t.not(a.cert.fingerprint256, b.cert.fingerprint256)
  t.notOk(a.cert.publicKey.equals(b.cert.publicKey))
  t.notOk(a.issueSvid('spiffe://td-a.test/x').key.equals(a.issueSvid('spiffe://td-a.test/x').key))
  t.end()
})

void t.test('test pki – an SVID chains to its CA per openssl', { skip: OPENSSL_MISSING }, t => {
  const root = createTestCa('td-a.test', { keyType: 'rsa-2048' })
  const svids: Array<[string, TestSvid]> = [
    ['direct', root.issueSvid('spiffe://td-a.test/direct')],
    ['two intermediates', root.createIntermediate().createIntermediate().issueSvid('spiffe://td-a.test/deep')]
  ]
  const dir = t.testdir()
  writeFileSync(join(dir, 'root.pem'), root.certPem)
  for (const [label, svid] of svids) {
    writeFileSync(join(dir, 'leaf.pem'), toPem(svid.chain.slice(0, 1)))
    writeFileSync(join(dir, 'intermediates.pem'), toPem(svid.chain.slice(1)))
    const args = ['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', join(dir, 'root.pem')]
    const intermediates = svid.chain.length > 1 ? ['-untrusted', join(dir, 'intermediates.pem')] : []
    const result = openssl([...args, ...intermediates, join(dir, 'leaf.pem')])
    t.ok(result.ok, `${label}: ${result.output}`)
  }
  t.end()
})
