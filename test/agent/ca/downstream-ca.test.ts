/**
 * The CA in the upstream role signs downstream CAs from CSRs as SPIRE's NewDownstreamX509CA does (agent/ca/
 * downstream-ca.ts): the profile and subject SPIRE writes, the chain and roots of its answer, TTL 0 meaning the CA
 * TTL, NotAfter capped at the signing authority's; the device's own acceptance check (agent/upstream/
 * device-ca-check.ts) takes the answer, and a CA nested under it issues SVIDs that openssl verifies to our bundle.
 */
import t from 'tap'
import { X509Certificate } from 'node:crypto'
import { subjectKeyId } from '../../../certs-test'
import { parseCertificate } from '../../../spiffe/x509-cert'
import { verifyX509Svid } from '../../../spiffe'
import type { AgentCa, DownstreamCa } from '../../../agent/ca'
import { acceptDeviceCa } from '../../../agent/upstream'
import type { DeviceCa } from '../../../agent/upstream'
import { OPENSSL_MISSING, certText } from '../../helpers/openssl'
import { ManualClock, openCa, opensslVerify, tempDir, td } from './fixtures/ca-fixtures'
import { deviceCsr } from './fixtures/csr-fixtures'
import type { Csr } from './fixtures/csr-fixtures'
import { nestedUnder, opensslVerifyCa } from './fixtures/downstream-fixtures'

const CA_TTL = 7200
const workload = td.id('/device/app')

/** The device's check of an answer, at `now`. */
function accept (answer: DownstreamCa, csr: Csr, now: Date): DeviceCa {
  return acceptDeviceCa({ ca_cert_chain: answer.chain, x509_authorities: answer.roots }, csr.privateKey, td, now)
}

function activeAuthority (ca: AgentCa): X509Certificate {
  const active = ca.status().x509.find(authority => authority.state === 'active')
  const cert = ca.bundle().x509.authorities.find(root => root.fingerprint256 === active?.fingerprint256)
  if (cert === undefined) throw new Error('no active root in the bundle')
  return cert
}

for (const keyType of ['ec-p256', 'rsa-2048'] as const) {
  void t.test(`downstream CA – for an ${keyType} CSR: SPIRE's CA profile, accepted by the device, verified by openssl`, { skip: OPENSSL_MISSING }, async t => {
    const dir = tempDir(t)
    const clock = new ManualClock()
    const ca = await openCa(t, { clock: clock.read, caTtlSeconds: CA_TTL })
    const csr = await deviceCsr(keyType)
    const answer = await ca.signDownstreamCa(csr.der, 1800)
    const parent = activeAuthority(ca)
    t.same(answer.roots, ca.bundle().x509.authorities.map(root => root.raw), 'x509_authorities: the bundle\'s roots')
    t.equal(answer.chain.length, 1, 'ca_cert_chain: the new CA alone under a self-signed root')

    const device = accept(answer, csr, clock.now)
    t.same(device.notBefore, new Date(clock.now.getTime() - 10_000), 'NotBefore 10 s back (NotBeforeCushion)')
    t.same(device.notAfter, new Date(clock.now.getTime() + 1800_000), 'NotAfter: the TTL asked for')
    t.same(answer.expiresAt, device.notAfter)
    t.equal(device.capped, false, 'not capped: the authority lives longer')

    const cert = new X509Certificate(answer.chain[0])
    t.ok(cert.checkIssued(parent) && cert.verify(parent.publicKey), 'signed by the active authority')
    const serialNumber = /serialNumber=([0-9a-f]+)/.exec(parent.subject)?.[1]
    t.equal(cert.subject, `O=Chaperone\nOU=DOWNSTREAM-1\nCN=Chaperone CA\nserialNumber=${serialNumber}`, 'the parent\'s subject with OU=DOWNSTREAM-1')
    const parsed = parseCertificate(cert)
    t.same(parsed.subjectKeyId, subjectKeyId(csr.publicKey), 'SubjectKeyId of the CSR key')
    t.same(parsed.authorityKeyId, parseCertificate(parent).subjectKeyId, 'AuthorityKeyId of the signer')
    t.same(parsed.uris, [td.idString], 'the trust domain ID, whatever the CSR says')
    t.same(parsed.basicConstraints, { cA: true }, 'cA, no path length')
    t.match(certText(answer.chain[0]), /Basic Constraints: critical\n\s+CA:TRUE\n[\s\S]*Key Usage: critical\n\s+Certificate Sign, CRL Sign\n/)
    const verified = opensslVerifyCa(dir, answer, clock.now)
    t.ok(verified.ok, `openssl verify accepts the downstream CA: ${verified.output}`)

    const child = await openCa(t, { clock: clock.read, caTtlSeconds: 1800, remoteUpstream: nestedUnder(ca, clock.read) })
    const svid = await child.mintX509Svid({ spiffeId: workload })
    t.equal(svid.chain.length, 2, 'the leaf, then the downstream CA')
    t.equal(new X509Certificate(svid.chain[1]).subject.split('\n')[1], 'OU=DOWNSTREAM-1')
    t.equal(verifyX509Svid(svid.chain, ca.bundle(), { now: clock.now }).toString(), workload.toString())
    const leaf = opensslVerify(dir, svid.chain, ca.bundle(), clock.now)
    t.ok(leaf.ok, `openssl verify accepts a leaf the downstream CA signed: ${leaf.output}`)
    // One level further: the nested CA's subject already has an OU, which Go's copy replaces (never a second OU).
    const grandchild = await child.signDownstreamCa((await deviceCsr('ec-p256')).der, 60)
    t.match(new X509Certificate(grandchild.chain[0]).subject, /^O=Chaperone\nOU=DOWNSTREAM-1\nCN=Chaperone CA\nserialNumber=\w+$/)
    t.equal(grandchild.chain.length, 2, 'the grandchild CA, then the nested CA')
  })
}

void t.test('downstream CA – TTL 0 is this CA\'s own CA TTL', async t => {
  const dataDir = tempDir(t)
  const clock = new ManualClock()
  // The authority made with a long CA TTL, then the CA reopened with a shorter one: TTL 0 must take the latter.
  const first = await openCa(t, { dataDir, clock: clock.read, caTtlSeconds: 4 * CA_TTL })
  first.close()
  const ca = await openCa(t, { dataDir, clock: clock.read, caTtlSeconds: CA_TTL })
  const csr = await deviceCsr('ec-p256')
  const device = accept(await ca.signDownstreamCa(csr.der, 0), csr, clock.now)
  t.same(device.notAfter, new Date(clock.now.getTime() + CA_TTL * 1000), 'now + ca TTL')
  t.equal(device.capped, false)
  const negative = accept(await ca.signDownstreamCa(csr.der, -5), csr, clock.now)
  t.same(negative.notAfter, device.notAfter, 'a negative TTL counts as 0, as SPIRE\'s ttl <= 0')
  await t.rejects(ca.signDownstreamCa(csr.der, 1.5), { code: 'ERR_CA_REQUEST_INVALID', message: /preferredTtlSeconds must be a whole number of seconds/ })
})

void t.test('downstream CA – a TTL beyond the signing authority is capped at its NotAfter', async t => {
  const clock = new ManualClock()
  const ca = await openCa(t, { clock: clock.read, caTtlSeconds: CA_TTL })
  clock.advance(600)
  const csr = await deviceCsr('ec-p256')
  const answer = await ca.signDownstreamCa(csr.der, 10 * CA_TTL)
  const device = accept(answer, csr, clock.now)
  const authorityEnd = new Date(activeAuthority(ca).validTo)
  t.same(device.notAfter, authorityEnd, 'capped at the authority\'s NotAfter')
  t.ok(device.notAfter.getTime() < clock.now.getTime() + 10 * CA_TTL * 1000, 'shorter than asked')
  t.equal(device.capped, true, 'the device sees it capped')
})

void t.test('downstream CA – a due rotation happens first; the new active authority signs', async t => {
  const clock = new ManualClock()
  const ca = await openCa(t, { clock: clock.read, caTtlSeconds: CA_TTL })
  const before = activeAuthority(ca)
  clock.advance(CA_TTL * 5 / 6 + 1)
  const csr = await deviceCsr('ec-p256')
  const answer = await ca.signDownstreamCa(csr.der, 600)
  const after = activeAuthority(ca)
  t.not(after.fingerprint256, before.fingerprint256, 'the successor became active')
  t.ok(new X509Certificate(answer.chain[0]).checkIssued(after), 'and signed the downstream CA')
  t.equal(answer.roots.length, 2, 'both roots, old and new, are in the answer')
  t.ok(accept(answer, csr, clock.now))
})
