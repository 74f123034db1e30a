/**
 * Downstream CAs signed by a CA that is itself an intermediate of an operator's CA (files): OU=DOWNSTREAM-<n> with n
 * the length of SPIRE's parent chain (our authority and the operator intermediates below the root), ca_cert_chain
 * the new CA then that chain, x509_authorities the operator roots; NotAfter capped at our authority, which the
 * operator CA caps in turn. The device's check and openssl verify take the answers.
 */
import t from 'tap'
import { X509Certificate } from 'node:crypto'
import { acceptDeviceCa } from '../../../agent/upstream'
import { OPENSSL_MISSING } from '../../helpers/openssl'
import { ManualClock, openCa, tempDir, td } from './fixtures/ca-fixtures'
import { deviceCsr } from './fixtures/csr-fixtures'
import { operatorFiles, operatorHierarchy, opensslVerifyCa } from './fixtures/downstream-fixtures'

void t.test('downstream CA – under an operator root: OU=DOWNSTREAM-1, chain [new CA, our intermediate]', { skip: OPENSSL_MISSING }, async t => {
  const dir = tempDir(t)
  const clock = new ManualClock()
  const { root } = operatorHierarchy(clock.now)
  const ca = await openCa(t, { clock: clock.read, upstream: operatorFiles(dir, 'root', root) })
  const csr = await deviceCsr('ec-p256')
  const answer = await ca.signDownstreamCa(csr.der, 600)
  t.equal(answer.chain.length, 2, 'the new CA, then our intermediate (never the root)')
  t.same(answer.roots, [root.certDer], 'the operator root')
  const ours = new X509Certificate(answer.chain[1])
  t.ok(ours.checkIssued(root.cert), 'our intermediate, issued by the operator root')
  const cert = new X509Certificate(answer.chain[0])
  t.equal(cert.subject.replace(/serialNumber=\w+/, 'serialNumber=…'), 'O=Chaperone\nOU=DOWNSTREAM-1\nCN=Chaperone CA\nserialNumber=…')
  t.ok(cert.checkIssued(ours), 'issued by our intermediate')
  const device = acceptDeviceCa({ ca_cert_chain: answer.chain, x509_authorities: answer.roots }, csr.privateKey, td, clock.now)
  t.same(device.notAfter, new Date(clock.now.getTime() + 600_000))
  const verified = opensslVerifyCa(dir, answer, clock.now)
  t.ok(verified.ok, `openssl verify: ${verified.output}`)
})

void t.test('downstream CA – under an operator intermediate: OU=DOWNSTREAM-2, chain [new CA, ours, operator\'s]', { skip: OPENSSL_MISSING }, async t => {
  const dir = tempDir(t)
  const clock = new ManualClock()
  const { root, issuing } = operatorHierarchy(clock.now)
  const ca = await openCa(t, { clock: clock.read, upstream: operatorFiles(dir, 'issuing', issuing, root) })
  const csr = await deviceCsr('rsa-2048')
  const answer = await ca.signDownstreamCa(csr.der, 0)
  t.equal(answer.chain.length, 3)
  t.same(answer.chain[2], issuing.certDer, 'the operator intermediate ends the chain')
  t.same(answer.roots, [root.certDer])
  t.equal(new X509Certificate(answer.chain[0]).subject.split('\n')[1], 'OU=DOWNSTREAM-2', 'n counts our authority and the operator intermediate')
  const device = acceptDeviceCa({ ca_cert_chain: answer.chain, x509_authorities: answer.roots }, csr.privateKey, td, clock.now)
  t.equal(device.capped, true, 'TTL 0 is the CA TTL, which reaches our authority\'s NotAfter')
  t.same(device.notAfter, new Date(new X509Certificate(answer.chain[1]).validTo))
  const verified = opensslVerifyCa(dir, answer, clock.now)
  t.ok(verified.ok, `openssl verify: ${verified.output}`)
})

void t.test('downstream CA – never outlives the operator CA above our authority', async t => {
  const dir = tempDir(t)
  const { root } = operatorHierarchy(new ManualClock().now)
  const clock = new ManualClock(new Date(root.notAfter.getTime() - 1800_000))
  const ca = await openCa(t, { clock: clock.read, upstream: operatorFiles(dir, 'root', root) })
  const csr = await deviceCsr('ec-p256')
  const answer = await ca.signDownstreamCa(csr.der, 86_400)
  t.same(answer.expiresAt, root.notAfter, 'capped at the operator root through our authority')
  const device = acceptDeviceCa({ ca_cert_chain: answer.chain, x509_authorities: answer.roots }, csr.privateKey, td, clock.now)
  t.equal(device.capped, true)
})
