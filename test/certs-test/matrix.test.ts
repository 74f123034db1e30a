import t from 'tap'
import { createPublicKey, X509Certificate } from 'node:crypto'
import { buildCertMatrix, type CertFixture } from '../../certs-test/matrix'

// The contract with the verifier: every fixture the design asks for, with its verdict.
const REQUIRED: Record<string, string> = {
  'valid-ec-direct': 'valid',
  'valid-rsa-direct': 'valid',
  'valid-ec-via-intermediate': 'valid',
  'valid-rsa-via-intermediate': 'valid',
  'valid-via-two-intermediates': 'valid',
  'valid-ec-leaf-rsa-ca': 'valid',
  'valid-with-dns-sans': 'valid',
  'valid-empty-subject-critical-san': 'valid',
  'valid-td-b': 'valid',
  expired: 'ERR_X509_SVID_EXPIRED',
  'not-yet-valid': 'ERR_X509_SVID_NOT_YET_VALID',
  'no-uri-san': 'ERR_X509_SVID_NO_URI_SAN',
  'two-uri-sans': 'ERR_X509_SVID_MULTIPLE_URI_SANS',
  'non-spiffe-uri': 'ERR_X509_SVID_NOT_SPIFFE_URI',
  'leaf-is-ca': 'ERR_X509_SVID_LEAF_IS_CA',
  'leaf-key-cert-sign': 'ERR_X509_SVID_KEY_USAGE',
  'leaf-crl-sign': 'ERR_X509_SVID_KEY_USAGE',
  'leaf-no-digital-signature': 'ERR_X509_SVID_KEY_USAGE',
  'leaf-key-usage-not-critical': 'ERR_X509_SVID_KEY_USAGE',
  'leaf-key-usage-missing': 'ERR_X509_SVID_KEY_USAGE',
  'id-without-path': 'ERR_X509_SVID_ID_NO_PATH',
  'invalid-id-syntax': 'ERR_X509_SVID_ID_INVALID',
  'untrusted-ca': 'ERR_X509_SVID_UNTRUSTED',
  'wrong-trust-domain': 'ERR_X509_SVID_WRONG_TRUST_DOMAIN',
  'missing-intermediate': 'ERR_X509_SVID_UNTRUSTED',
  'self-signed-leaf': 'ERR_X509_SVID_SELF_SIGNED',
  'eku-without-client-auth': 'ERR_X509_SVID_EXT_KEY_USAGE',
  'eku-without-server-auth': 'ERR_X509_SVID_EXT_KEY_USAGE',
  'tampered-signature': 'ERR_X509_SVID_BAD_SIGNATURE',
  'unknown-critical-extension': 'ERR_X509_SVID_CRITICAL_EXTENSION',
  'intermediate-not-ca': 'ERR_X509_SVID_BAD_SIGNING_CERT',
  'intermediate-no-key-cert-sign': 'ERR_X509_SVID_BAD_SIGNING_CERT',
  'path-length-exceeded': 'ERR_X509_SVID_BAD_SIGNING_CERT',
  'expired-intermediate': 'ERR_X509_SVID_EXPIRED',
  'empty-subject-san-not-critical': 'ERR_X509_SVID_MALFORMED'
}

const now = new Date('2031-06-01T12:00:00Z') // far from the real clock: validity must follow `now`, not Date.now()
const matrix = buildCertMatrix(now)
const byName = new Map(matrix.map(f => [f.name, f]))
const certs = (f: CertFixture): X509Certificate[] => f.chain.map(der => new X509Certificate(der))
const root = (f: CertFixture, td: string): X509Certificate => new X509Certificate(f.bundles[td][0])
const verdict = (f: CertFixture): string => 'id' in f.expect ? 'valid' : f.expect.code
const validAt = (cert: X509Certificate, at: Date): boolean =>
  Date.parse(cert.validFrom) <= at.getTime() && at.getTime() <= Date.parse(cert.validTo)
const fixture = (name: string): CertFixture => {
  const f = byName.get(name)
  if (f === undefined) throw new Error(`no fixture ${name}`)
  return f
}

void t.test('cert matrix – holds every required fixture once, kebab-case, with the required verdict', t => {
  t.equal(byName.size, matrix.length, 'names are unique')
  for (const f of matrix) t.match(f.name, /^[a-z0-9]+(-[a-z0-9]+)*$/, `${f.name} is kebab-case`)
  for (const [name, expected] of Object.entries(REQUIRED)) t.equal(byName.has(name) && verdict(fixture(name)), expected, name)
  for (const f of matrix) {
    t.equal(f.name.startsWith('valid-'), 'id' in f.expect, `${f.name}: only valid-* fixtures are accepted`)
    t.ok(f.description.length > 10 && f.description.endsWith('.'), `${f.name}: a one-sentence description`)
    if (!('id' in f.expect)) t.type(f.expect.reason, RegExp, `${f.name}: a reason pattern`)
  }
  t.end()
})

void t.test('cert matrix – each fixture: both bundles, a parseable chain, the leaf\'s own key', t => {
  for (const f of matrix) {
    t.same(Object.keys(f.bundles).sort(), ['td-a.test', 'td-b.test'], `${f.name}: both trust domains`)
    for (const td of ['td-a.test', 'td-b.test']) t.ok(root(f, td).checkIssued(root(f, td)), `${f.name}: ${td} bundle holds a root`)
    const [leaf] = certs(f)
    t.ok(leaf.publicKey.equals(createPublicKey(f.key)), `${f.name}: key matches the leaf`)
  }
  t.end()
})

void t.test('cert matrix – valid fixtures carry their expected ID as the single URI SAN and chain to their bundle', t => {
  for (const f of matrix.filter(f => 'id' in f.expect)) {
    const id = (f.expect as { id: string }).id
    const chain = certs(f)
    t.match(chain[0].subjectAltName, new RegExp(`^URI:${id}(, DNS:|$)`), `${f.name}: URI SAN`)
    const anchor = root(f, /^spiffe:\/\/([^/]+)/.exec(id)?.[1] ?? '')
    const path = [...chain, anchor]
    for (let i = 0; i + 1 < path.length; i++) {
      t.ok(path[i].checkIssued(path[i + 1]) && path[i].verify(path[i + 1].publicKey), `${f.name}: link ${i} verifies`)
    }
    t.ok(path.every(cert => validAt(cert, now)), `${f.name}: valid at now`)
  }
  t.end()
})

void t.test('cert matrix – validity windows follow `now`: only the time defects are out of it', t => {
  const timeDefects = ['expired', 'not-yet-valid', 'expired-intermediate']
  for (const f of matrix.filter(f => !timeDefects.includes(f.name))) {
    t.ok(certs(f).every(cert => validAt(cert, now)), `${f.name}: every certificate valid at now`)
  }
  t.ok(Date.parse(certs(fixture('expired'))[0].validTo) < now.getTime(), 'expired leaf ended before now')
  t.ok(Date.parse(certs(fixture('not-yet-valid'))[0].validFrom) > now.getTime(), 'not-yet-valid leaf starts after now')
  const [leaf, intermediate] = certs(fixture('expired-intermediate'))
  t.ok(validAt(leaf, now) && Date.parse(intermediate.validTo) < now.getTime(), 'expired-intermediate: leaf valid, intermediate expired')
  t.end()
})

void t.test('cert matrix – signature defects are what their names say (per Node)', t => {
  const tdA = (name: string): X509Certificate => root(fixture(name), 'td-a.test')
  const leafOf = (name: string): X509Certificate => certs(fixture(name))[0]
  t.notOk(leafOf('tampered-signature').verify(tdA('tampered-signature').publicKey), 'tampered signature fails')
  t.ok(leafOf('tampered-signature').checkIssued(tdA('tampered-signature')), '…though the names and key IDs link up')
  // Not checkIssued: Node's (OpenSSL's X509_check_issued) also demands keyCertSign of the issuer, which a leaf lacks.
  const selfSigned = leafOf('self-signed-leaf')
  t.ok(selfSigned.issuer === selfSigned.subject && selfSigned.verify(selfSigned.publicKey), 'self-signed leaf: own name, own key')
  t.ok(leafOf('wrong-trust-domain').verify(root(fixture('wrong-trust-domain'), 'td-b.test').publicKey), 'wrong-trust-domain is signed by td-b.test')
  t.equal(leafOf('untrusted-ca').issuer, tdA('untrusted-ca').subject, 'the impostor root is named like the real one')
  t.notOk(leafOf('untrusted-ca').verify(tdA('untrusted-ca').publicKey), '…but is not it')
  t.equal(fixture('missing-intermediate').chain.length, 1)
  t.notOk(leafOf('missing-intermediate').checkIssued(tdA('missing-intermediate')))
  t.end()
})

void t.test('cert matrix – SAN defects are what their names say (per Node)', t => {
  const san = (name: string): string | undefined => certs(fixture(name))[0].subjectAltName
  t.equal(san('no-uri-san'), undefined)
  t.equal(san('two-uri-sans'), 'URI:spiffe://td-a.test/two-uri-sans, URI:spiffe://td-a.test/second')
  t.equal(san('non-spiffe-uri'), 'URI:https://td-a.test/non-spiffe-uri')
  t.equal(san('id-without-path'), 'URI:spiffe://td-a.test')
  t.equal(san('invalid-id-syntax'), 'URI:spiffe://td-a.test/a//b')
  t.equal(certs(fixture('empty-subject-san-not-critical'))[0].subject, undefined)
  t.end()
})

void t.test('cert matrix – every call builds fresh keys', t => {
  const again = buildCertMatrix(now)
  t.notOk(again[0].key.equals(matrix[0].key))
  t.end()
})
