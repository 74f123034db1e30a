import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { writeCertMatrix } from '../../certs-test/generate'
import type { CertFixture } from '../../certs-test/matrix'
import { certText, OPENSSL_MISSING, verifyFixture } from '../helpers/openssl'

// The matrix, cross-checked by an X.509 implementation that is neither forge nor our code: the openssl CLI.
if (OPENSSL_MISSING !== undefined) {
  t.plan(0, OPENSSL_MISSING)
} else {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-cert-matrix-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const fixtures = writeCertMatrix(dir)
  const byName = new Map(fixtures.map(f => [f.name, f]))
  const fixture = (name: string): CertFixture => {
    const f = byName.get(name)
    if (f === undefined) throw new Error(`no fixture ${name}`)
    return f
  }

  void t.test('cert matrix – openssl accepts every valid fixture against its own trust domain\'s bundle, strict, for client and server', t => {
    for (const f of fixtures) {
      if (!('id' in f.expect)) continue
      const td = /^spiffe:\/\/([^/]+)/.exec(f.expect.id)?.[1] ?? ''
      for (const purpose of ['sslclient', 'sslserver']) {
        const result = verifyFixture(dir, f.name, td, ['-x509_strict', '-purpose', purpose])
        t.ok(result.ok, `${f.name} as ${purpose}: ${result.output.trim()}`)
      }
    }
    t.end()
  })

  // What openssl says for each defect it can see: proof that the fixture breaks the rule its name says.
  const opensslRejects: Record<string, RegExp> = {
    expired: /error 10 at 0 depth lookup: certificate has expired/,
    'not-yet-valid': /error 9 at 0 depth lookup: certificate is not yet valid/,
    'untrusted-ca': /error 20 at 0 depth lookup: unable to get local issuer certificate/,
    'missing-intermediate': /error 20 at 0 depth lookup: unable to get local issuer certificate/,
    'self-signed-leaf': /error 18 at 0 depth lookup: self-signed certificate/,
    'tampered-signature': /error 7 at 0 depth lookup: certificate signature failure/,
    'intermediate-not-ca': /error 79 at 1 depth lookup: invalid CA certificate/,
    'intermediate-no-key-cert-sign': /error 79 at 1 depth lookup: invalid CA certificate/,
    'path-length-exceeded': /error 25 at 2 depth lookup: path length constraint exceeded/,
    'expired-intermediate': /Expired Intermediate CA\nerror 10 at 1 depth lookup: certificate has expired/,
    'unknown-critical-extension': /error 34 at 0 depth lookup: unhandled critical extension/,
    'wrong-trust-domain': /error 20 at 0 depth lookup: unable to get local issuer certificate/
  }

  void t.test('cert matrix – openssl rejects the chain, validity and extension defects, for the reason named', t => {
    for (const [name, reason] of Object.entries(opensslRejects)) {
      const result = verifyFixture(dir, name, 'td-a.test')
      t.notOk(result.ok, `${name} fails`)
      t.match(result.output, reason, `${name}: ${reason.source}`)
    }
    t.end()
  })

  void t.test('cert matrix – wrong-trust-domain chains only to td-b.test; untrusted-ca to no bundle', t => {
    t.ok(verifyFixture(dir, 'wrong-trust-domain', 'td-b.test').ok, 'td-b.test\'s root signed it')
    t.notOk(verifyFixture(dir, 'untrusted-ca', 'td-b.test').ok, 'untrusted-ca: not td-b.test either')
    t.end()
  })

  void t.test('cert matrix – openssl\'s strict and purpose checks see the subject and EKU defects', t => {
    const strict = verifyFixture(dir, 'empty-subject-san-not-critical', 'td-a.test', ['-x509_strict'])
    t.match(strict.output, /Subject empty and Subject Alt Name extension not critical/)
    t.notOk(verifyFixture(dir, 'eku-without-client-auth', 'td-a.test', ['-purpose', 'sslclient']).ok, 'not usable as a TLS client')
    t.ok(verifyFixture(dir, 'eku-without-client-auth', 'td-a.test', ['-purpose', 'sslserver']).ok, '…only as a server')
    t.notOk(verifyFixture(dir, 'eku-without-server-auth', 'td-a.test', ['-purpose', 'sslserver']).ok, 'not usable as a TLS server')
    t.ok(verifyFixture(dir, 'eku-without-server-auth', 'td-a.test', ['-purpose', 'sslclient']).ok, '…only as a client')
    t.end()
  })

  const leafText = (name: string): string => certText(fixture(name).chain[0])
  void t.test('cert matrix – openssl x509 -text shows the key usage, basic constraints and SANs intended', t => {
    t.match(leafText('valid-ec-direct'), /Key Usage: critical\s+Digital Signature, Key Encipherment, Key Agreement\n/)
    t.match(leafText('leaf-key-cert-sign'), /Key Usage: critical\s+Digital Signature, Key Encipherment, Key Agreement, Certificate Sign\n/)
    t.match(leafText('leaf-crl-sign'), /Key Usage: critical\s+Digital Signature, Key Encipherment, Key Agreement, CRL Sign\n/)
    t.match(leafText('leaf-no-digital-signature'), /Key Usage: critical\s+Key Encipherment, Key Agreement\n/)
    t.match(leafText('leaf-key-usage-not-critical'), /Key Usage: \n\s+Digital Signature, Key Encipherment, Key Agreement\n/)
    t.notMatch(leafText('leaf-key-usage-missing'), /X509v3 Key Usage/)
    t.match(leafText('leaf-is-ca'), /Basic Constraints: critical\s+CA:TRUE\n/)
    t.match(leafText('two-uri-sans'), /Subject Alternative Name: \n\s+URI:spiffe:\/\/td-a\.test\/two-uri-sans, URI:spiffe:\/\/td-a\.test\/second\n/)
    t.match(leafText('valid-with-dns-sans'), /URI:spiffe:\/\/td-a\.test\/valid-with-dns-sans, DNS:web\.td-a\.test, DNS:localhost\n/)
    t.match(leafText('valid-empty-subject-critical-san'), /Subject: ?\n[\s\S]*Subject Alternative Name: critical\n/)
    t.match(leafText('eku-without-client-auth'), /Extended Key Usage: \n\s+TLS Web Server Authentication\n/)
    t.match(leafText('unknown-critical-extension'), /1\.3\.6\.1\.4\.1\.32473\.1\.1: critical\n/)
    t.match(certText(fixture('path-length-exceeded').bundles['td-a.test'][0]), /Basic Constraints: critical\s+CA:TRUE, pathlen:0\n/)
    t.match(certText(fixture('intermediate-not-ca').chain[1]), /Basic Constraints: critical\s+CA:FALSE\n/)
    t.end()
  })
}
