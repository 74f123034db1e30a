/**
 * CSRs as the CA takes them (agent/ca/csr.ts) for NewDownstreamX509CA and BatchNewX509SVID: a request made by
 * openssl gives its key and nothing else of what it asks for; a broken, tampered, malformed or weak request is
 * refused by both methods with ERR_CA_REQUEST_INVALID in SPIRE's words; and an X509-SVID minted from a CSR certifies
 * the CSR's key under the requested ID and verifies to the bundle.
 */
import t from 'tap'
import { X509Certificate } from 'node:crypto'
import { parseAndCheckCsr } from '../../../agent/ca/csr'
import { parseSpiffeId, verifyX509Svid } from '../../../spiffe'
import { OPENSSL_MISSING } from '../../helpers/openssl'
import { ManualClock, openCa, opensslVerify, tempDir, td } from './fixtures/ca-fixtures'
import { flipByte, opensslCsr, replaceText, spkiOf } from './fixtures/csr-fixtures'

const workload = td.id('/edge/app')

void t.test('csr – a request made by openssl gives its key, for every key type the CA certifies', { skip: OPENSSL_MISSING }, async t => {
  const dir = tempDir(t)
  for (const key of ['ec-p256', 'ec-p384', 'rsa-2048', 'rsa-2048-pss'] as const) {
    const csr = opensslCsr(dir, key)
    t.same(spkiOf(await parseAndCheckCsr(csr.der)), spkiOf(csr.publicKey), key)
  }
})

void t.test('csr – refusals name the problem in SPIRE\'s words, from both CA methods', { skip: OPENSSL_MISSING }, async t => {
  const dir = tempDir(t)
  const ca = await openCa(t)
  const good = opensslCsr(dir, 'ec-p256', { subject: '/O=Downstream/CN=abcdef' }).der
  const rsa = opensslCsr(dir, 'rsa-2048').der
  const cases: Array<[string, unknown, RegExp]> = [
    ['an ECDSA signature with a byte flipped', flipByte(good, -1), /^invalid CSR signature: the signature does not verify with the key the CSR carries$/],
    ['an RSA signature with a byte flipped', flipByte(rsa, -1), /^invalid CSR signature: the signature does not verify/],
    ['a subject changed after signing', replaceText(good, 'abcdef', 'abcdeg'), /^invalid CSR signature: the signature does not verify/],
    ['garbage bytes', Buffer.from('not a certificate request at all'), /^malformed CSR: it is not a DER SEQUENCE$/],
    ['a DER SEQUENCE that is no request', Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00]), /^malformed CSR: /],
    ['the request as PEM text', Buffer.from(`-----BEGIN CERTIFICATE REQUEST-----\n${good.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`), /^malformed CSR: it is not a DER SEQUENCE$/],
    ['a byte after the request', Buffer.concat([good, Buffer.from([0])]), /^malformed CSR: trailing data \(1 bytes after the request\)$/],
    ['a request cut short', good.subarray(0, good.length - 10), /^malformed CSR: it is cut short/],
    ['nothing', Buffer.alloc(0), /^malformed CSR: it is empty$/],
    ['a string instead of bytes', good.toString('base64'), /^malformed CSR: it must be the DER bytes of a PKCS#10 request$/],
    ['an Ed25519 key', opensslCsr(dir, 'ed25519').der, /^invalid CSR: its key is ed25519; this CA certifies EC \(P-256, P-384, P-521\) or RSA \(2048 bits or more\) keys$/],
    ['an RSA-1024 key', opensslCsr(dir, 'rsa-1024').der, /^invalid CSR: its key is rsa \(1024 bits\); this CA certifies/]
  ]
  for (const [name, der, message] of cases) {
    await t.rejects(parseAndCheckCsr(der), { code: 'ERR_CA_REQUEST_INVALID', message }, name)
    await t.rejects(ca.signDownstreamCa(der as Buffer, 0), { code: 'ERR_CA_REQUEST_INVALID', message }, `${name}: no downstream CA`)
    await t.rejects(ca.mintX509SvidFromCsr(der as Buffer, { spiffeId: workload }), { code: 'ERR_CA_REQUEST_INVALID', message }, `${name}: no X509-SVID`)
  }
  t.ok(await parseAndCheckCsr(good), 'the request the refused ones were made from is accepted')
})

void t.test('svid from csr – certifies the CSR key under the requested ID, whatever the CSR asks for', { skip: OPENSSL_MISSING }, async t => {
  const dir = tempDir(t)
  const clock = new ManualClock()
  const ca = await openCa(t, { clock: clock.read })
  // SPIRE takes only the key: the subject and SANs of the request are no part of the SVID.
  const csr = opensslCsr(dir, 'ec-p384', { subject: '/O=Mallory/CN=admin.example', san: 'URI:spiffe://plant.example/admin,DNS:admin.example' })
  const svid = await ca.mintX509SvidFromCsr(csr.der, { spiffeId: workload, dnsNames: ['app.local'], ttlSeconds: 600 })
  t.equal(svid.privateKey, undefined, 'the CA made no key: the workload holds it')
  const leaf = new X509Certificate(svid.chain[0])
  t.same(spkiOf(leaf.publicKey), spkiOf(csr.publicKey), 'the leaf certifies the CSR key')
  t.equal(leaf.subjectAltName, `URI:${workload.toString()}, DNS:app.local`, 'the requested ID and DNS name, not the CSR\'s')
  t.notMatch(leaf.subject, /Mallory|admin/, 'nothing of the CSR subject')
  t.same(svid.expiresAt, new Date(clock.now.getTime() + 600_000), 'the requested TTL')
  t.equal(verifyX509Svid(svid.chain, ca.bundle(), { now: clock.now }).toString(), workload.toString(), 'verifyX509Svid accepts it')
  const verified = opensslVerify(dir, svid.chain, ca.bundle(), clock.now)
  t.ok(verified.ok, `openssl verify accepts it: ${verified.output}`)

  const rsa = opensslCsr(dir, 'rsa-2048')
  const defaults = await ca.mintX509SvidFromCsr(rsa.der, { spiffeId: workload })
  t.same(spkiOf(new X509Certificate(defaults.chain[0]).publicKey), spkiOf(rsa.publicKey), 'an RSA CSR key too')
  t.same(defaults.expiresAt, new Date(clock.now.getTime() + 3600_000), 'the default X509-SVID TTL')
  await t.rejects(ca.mintX509SvidFromCsr(csr.der, { spiffeId: parseSpiffeId('spiffe://other.example/app') }),
    { code: 'ERR_CA_REQUEST_INVALID', message: /not in trust domain plant\.example/ }, 'the request is still checked')
})
