import t from 'tap'
import { generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { buildCertificate, subjectKeyId, type CertSpec, type IssuerSpec } from '../../certs-test/build-cert'
import { certText, openssl, OPENSSL_MISSING } from '../helpers/openssl'

const ec = (): { privateKey: KeyObject, publicKey: KeyObject } => generateKeyPairSync('ec', { namedCurve: 'P-256' })
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
const caKey = ec()
const issuer: IssuerSpec = { name: { commonName: 'Issuer' }, key: caKey.privateKey, keyId: subjectKeyId(caKey.publicKey) }
const base: CertSpec = { subject: { commonName: 'Subject' }, issuer, publicKey: ec().publicKey, notBefore: new Date(), notAfter: new Date(Date.now() + 3600_000) }
const colonHex = (bytes: Buffer): string => bytes.toString('hex').toUpperCase().replace(/(..)(?!$)/g, '$1:')

// DER AlgorithmIdentifiers: ecdsa-with-SHA256 with absent parameters, sha256WithRSAEncryption with NULL ones.
const ECDSA_SHA256 = '300a06082a8648ce3d040302'
const RSA_SHA256 = '300d06092a864886f70d01010b0500'

void t.test('build-cert – EC and RSA issuers sign with the algorithm their key calls for, verified by Node and openssl', t => {
  const rsaIssuer: IssuerSpec = { name: { commonName: 'RSA Issuer' }, key: rsa.privateKey, keyId: subjectKeyId(rsa.publicKey) }
  const cases = [[issuer, caKey.publicKey, 'ecdsa-with-SHA256', ECDSA_SHA256], [rsaIssuer, rsa.publicKey, 'sha256WithRSAEncryption', RSA_SHA256]] as const
  for (const [signer, publicKey, algorithm, algorithmDer] of cases) {
    const der = buildCertificate({ ...base, issuer: signer })
    t.ok(new X509Certificate(der).verify(publicKey), `${algorithm}: signature verifies`)
    t.equal(der.toString('hex').split(algorithmDer).length - 1, 2, `${algorithm}: same AlgorithmIdentifier in the TBS and outside`)
    t.equal(certText(der).split(`Signature Algorithm: ${algorithm}`).length - 1, 2, `${algorithm}: openssl reads it`)
  }
  t.end()
})

void t.test('build-cert – the subject key is the given KeyObject, EC or RSA, public or private', t => {
  for (const key of [ec(), rsa]) {
    const fromPublic = new X509Certificate(buildCertificate({ ...base, publicKey: key.publicKey }))
    const fromPrivate = new X509Certificate(buildCertificate({ ...base, publicKey: key.privateKey }))
    t.ok(fromPublic.publicKey.equals(key.publicKey) && fromPrivate.publicKey.equals(key.publicKey), `${key.publicKey.asymmetricKeyType} key`)
  }
  t.end()
})

void t.test('build-cert – subjectKeyIdentifier is computed as OpenSSL computes it; the AKI names the issuer\'s', { skip: OPENSSL_MISSING }, t => {
  const dir = t.testdir()
  for (const key of [ec(), rsa]) {
    const keyFile = join(dir, 'key.pem')
    writeFileSync(keyFile, key.privateKey.export({ type: 'pkcs8', format: 'pem' }))
    const reference = openssl(['req', '-x509', '-new', '-key', keyFile, '-subj', '/CN=reference', '-noout', '-text'])
    const ski = colonHex(subjectKeyId(key.publicKey))
    t.match(reference.output, new RegExp(`Subject Key Identifier: \\s+${ski}\\n`), `${key.publicKey.asymmetricKeyType} key: openssl agrees`)
    const text = certText(buildCertificate({ ...base, publicKey: key.publicKey }))
    t.match(text, new RegExp(`Subject Key Identifier: \\s+${ski}\\n`))
    t.match(text, new RegExp(`Authority Key Identifier: \\s+(keyid:)?${colonHex(issuer.keyId)}\\n`))
  }
  t.end()
})

void t.test('build-cert – a self-signed certificate names itself as issuer and verifies under its own key', t => {
  const key = ec()
  const cert = new X509Certificate(buildCertificate({ ...base, publicKey: key.publicKey, issuer: { selfSigned: key.privateKey } }))
  t.equal(cert.issuer, cert.subject)
  t.ok(cert.verify(key.publicKey))
  const text = certText(cert.raw)
  t.equal(/Subject Key Identifier: \s+(\S+)/.exec(text)?.[1], /Authority Key Identifier: \s+(?:keyid:)?(\S+)/.exec(text)?.[1])
  t.end()
})

void t.test('build-cert – extensions appear exactly as specified: bits, criticality, absence', t => {
  const minimal = certText(buildCertificate(base))
  for (const absent of ['Basic Constraints', 'X509v3 Key Usage', 'Extended Key Usage', 'Subject Alternative Name']) t.notMatch(minimal, absent, `no ${absent} unless asked`)
  const full = certText(buildCertificate({
    ...base,
    basicConstraints: { cA: true, pathLen: 0, critical: false },
    keyUsage: { usages: ['digitalSignature', 'keyEncipherment', 'keyAgreement', 'keyCertSign', 'cRLSign'], critical: false },
    extKeyUsage: ['clientAuth'],
    uris: ['spiffe://td-a.test/a//b', 'https://x.test/'],
    dnsNames: ['x.test'],
    sanCritical: true,
    extraExtension: { oid: '1.3.6.1.4.1.32473.9', critical: true, value: Buffer.from([0x05, 0x00]) }
  }))
  t.match(full, /Basic Constraints: \s+CA:TRUE, pathlen:0\n/)
  t.match(full, /Key Usage: \s+Digital Signature, Key Encipherment, Key Agreement, Certificate Sign, CRL Sign\n/)
  t.match(full, /Extended Key Usage: \s+TLS Web Client Authentication\n/)
  t.match(full, /Subject Alternative Name: critical\s+URI:spiffe:\/\/td-a\.test\/a\/\/b, URI:https:\/\/x\.test\/, DNS:x\.test\n/, 'URIs verbatim, even invalid')
  t.match(full, /1\.3\.6\.1\.4\.1\.32473\.9: critical\n/)
  t.match(certText(buildCertificate({ ...base, basicConstraints: { cA: false, critical: true } })), /Basic Constraints: critical\s+CA:FALSE\n/)
  t.end()
})

void t.test('build-cert – an empty subject is an empty name', t => {
  const der = buildCertificate({ ...base, subject: {}, uris: ['spiffe://td-a.test/x'], sanCritical: true })
  t.equal(new X509Certificate(der).subject, undefined, 'Node sees no subject')
  t.match(certText(der), /Subject: ?\n/)
  t.end()
})

void t.test('build-cert – serial and validity are written as given', t => {
  const notBefore = new Date('2030-01-02T03:04:05Z')
  const notAfter = new Date('2051-01-01T00:00:00Z') // after 2049: GeneralizedTime
  const cert = new X509Certificate(buildCertificate({ ...base, serial: Buffer.from('0102', 'hex'), notBefore, notAfter }))
  t.equal(cert.serialNumber, '0102')
  t.equal(Date.parse(cert.validFrom), notBefore.getTime())
  t.equal(Date.parse(cert.validTo), notAfter.getTime())
  t.end()
})

void t.test('build-cert – tamperSignature gives a certificate that parses but no longer verifies', t => {
  const der = buildCertificate({ ...base, tamperSignature: true })
  t.notOk(new X509Certificate(der).verify(caKey.publicKey))
  t.ok(new X509Certificate(buildCertificate(base)).verify(caKey.publicKey), 'the untampered one does')
  t.end()
})

void t.test('build-cert – a signing key it cannot use is refused with the reason', t => {
  const ed = generateKeyPairSync('ed25519')
  t.throws(() => buildCertificate({ ...base, issuer: { ...issuer, key: ed.privateKey } }), /cannot sign with key type ed25519/)
  t.end()
})
