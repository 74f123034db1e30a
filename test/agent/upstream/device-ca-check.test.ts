/**
 * Accepting the device CA NewDownstreamX509CA returned (device-ca-check.ts), with test certificates shaped like
 * SPIRE's: a CA for our key and trust domain chaining to the returned roots is accepted and its capping reported;
 * another key, a certificate that is no CA or may not sign, another trust domain, a broken or expired chain, an issuer
 * whose path length forbids a CA below it, and missing or unreadable parts are ERR_DEVICE_CA_INVALID naming why.
 */
import t from 'tap'
import { createTestCa, generateKeyPair } from '../../../certs-test'
import type { TestCa } from '../../../certs-test'
import { acceptDeviceCa } from '../../../agent/upstream'
import type { DownstreamCaMessage } from '../../../agent/upstream'
import { parseTrustDomain } from '../../../spiffe/id'

const TD = parseTrustDomain('fleet.example')
const HOUR_MS = 3600_000

const answer = (ca: TestCa, roots: TestCa[]): DownstreamCaMessage => ({ ca_cert_chain: ca.chain, x509_authorities: roots.map(root => root.certDer) })
const refusal = (message: DownstreamCaMessage, ca: TestCa, now?: Date): unknown => {
  try {
    acceptDeviceCa(message, ca.key, TD, now)
    return new Error('accepted, but should have been refused')
  } catch (err) {
    return err
  }
}

void t.test('device CA – a CA for our key and trust domain, chaining to the returned root, is accepted', async t => {
  const root = createTestCa(TD.name)
  const device = root.createIntermediate({ notAfter: new Date(Date.now() + HOUR_MS) })
  const accepted = acceptDeviceCa(answer(device, [root]), device.key, TD)
  t.same(accepted.chain, [device.certDer])
  t.same(accepted.roots, [root.certDer])
  t.equal(accepted.notAfter.getTime(), device.notAfter.getTime())
  t.equal(accepted.issuerNotAfter.getTime(), root.notAfter.getTime(), 'the issuer is the root')
  t.notOk(accepted.capped, 'it ends before its issuer')
})

void t.test('device CA – one ending with its issuer is reported capped; an upstream intermediate is the issuer', async t => {
  const root = createTestCa(TD.name)
  const upstream = root.createIntermediate({ notAfter: new Date(Date.now() + 2 * HOUR_MS) })
  const device = upstream.createIntermediate({ notAfter: new Date(Date.now() + 48 * HOUR_MS) })
  const accepted = acceptDeviceCa(answer(device, [root]), device.key, TD)
  t.equal(accepted.chain.length, 2, 'the device CA, then the upstream intermediate')
  t.equal(accepted.issuerNotAfter.getTime(), upstream.notAfter.getTime())
  t.ok(accepted.capped)
})

void t.test('device CA – refused when it is not ours, not a CA, or not for our trust domain', async t => {
  const root = createTestCa(TD.name)
  const device = root.createIntermediate()
  t.throws(() => acceptDeviceCa(answer(device, [root]), generateKeyPair().privateKey, TD), { code: 'ERR_DEVICE_CA_INVALID', message: /certifies another key than the one we sent/ }, 'another key')

  const notCa = root.createIntermediate({ override: { basicConstraints: { cA: false, critical: true } } })
  t.match(refusal(answer(notCa, [root]), notCa), { code: 'ERR_DEVICE_CA_INVALID', message: /is not a CA/ }, 'basicConstraints cA false')
  const noBasicConstraints = root.createIntermediate({ override: { basicConstraints: undefined } })
  t.match(refusal(answer(noBasicConstraints, [root]), noBasicConstraints), { code: 'ERR_DEVICE_CA_INVALID', message: /is not a CA/ }, 'no basicConstraints')
  const cannotSign = root.createIntermediate({ override: { keyUsage: { usages: ['digitalSignature'], critical: true } } })
  t.match(refusal(answer(cannotSign, [root]), cannotSign), { code: 'ERR_DEVICE_CA_INVALID', message: /may not sign certificates/ }, 'no keyCertSign')

  const otherRoot = createTestCa('other.example')
  const foreign = otherRoot.createIntermediate()
  t.match(refusal(answer(foreign, [otherRoot]), foreign), { code: 'ERR_DEVICE_CA_INVALID', message: /is not for trust domain fleet\.example \(URI SAN spiffe:\/\/other\.example/ }, 'another trust domain')
  const workloadUri = root.createIntermediate({ override: { uris: [`spiffe://${TD.name}/workload`] } })
  t.match(refusal(answer(workloadUri, [root]), workloadUri), { code: 'ERR_DEVICE_CA_INVALID', message: /is not for trust domain/ }, 'a workload ID instead of the trust domain\'s')
})

void t.test('device CA – refused when it does not chain to the returned roots, valid now, with room below its issuers', async t => {
  const root = createTestCa(TD.name)
  const device = root.createIntermediate()
  t.match(refusal(answer(device, [createTestCa(TD.name)]), device), { code: 'ERR_DEVICE_CA_INVALID', message: /its chain to the returned roots: .*matches an authority of trust domain fleet.example but not its key/ }, 'another root of the same trust domain')

  const upstream = root.createIntermediate()
  const below = upstream.createIntermediate()
  t.match(refusal({ ca_cert_chain: [below.certDer], x509_authorities: [root.certDer] }, below), { code: 'ERR_DEVICE_CA_INVALID', message: /its chain to the returned roots/ }, 'the upstream intermediate left out')
  const forged = root.createIntermediate({ override: { tamperSignature: true } })
  t.match(refusal(answer(forged, [root]), forged), { code: 'ERR_DEVICE_CA_INVALID', message: /signature that its issuer's key does not verify/ }, 'a broken signature')
  t.match(refusal(answer(device, [root]), device, new Date(device.notAfter.getTime() + 1000)), { code: 'ERR_DEVICE_CA_INVALID', message: /expired/ }, 'expired')

  const leavesOnly = root.createIntermediate({ override: { basicConstraints: { cA: true, pathLen: 0, critical: true } } })
  const underLeavesOnly = leavesOnly.createIntermediate()
  t.match(refusal(answer(underLeavesOnly, [root]), underLeavesOnly), { code: 'ERR_DEVICE_CA_INVALID', message: /allows 0 CA\(s\) below it/ }, 'an issuer with pathLenConstraint 0')
})

void t.test('device CA – refused when parts are missing or unreadable', async t => {
  const root = createTestCa(TD.name)
  const device = root.createIntermediate()
  t.match(refusal({ ca_cert_chain: [], x509_authorities: [root.certDer] }, device), { code: 'ERR_DEVICE_CA_INVALID', message: /no certificate/ })
  t.match(refusal({ ca_cert_chain: device.chain, x509_authorities: [] }, device), { code: 'ERR_DEVICE_CA_INVALID', message: /no X\.509 root/ })
  t.match(refusal({ ca_cert_chain: [Buffer.from('not DER')], x509_authorities: [root.certDer] }, device), { code: 'ERR_DEVICE_CA_INVALID', message: /certificate 0 of the chain/ })
  t.match(refusal({ ca_cert_chain: device.chain, x509_authorities: [Buffer.from('not DER')] }, device), { code: 'ERR_DEVICE_CA_INVALID', message: /the returned roots/ })
})
