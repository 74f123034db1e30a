/**
 * SPIRE's GetBundle answer as a SpiffeBundle (upstream-bundle.ts bundleFromMessage): the roots and JWT keys of our
 * trust domain are kept with the sequence number and refresh hint; another trust domain's bundle, one without roots,
 * and an unreadable root or JWT key are ERR_UPSTREAM_BUNDLE_INVALID.
 */
import t from 'tap'
import { createTestCa, generateKeyPair } from '../../../certs-test'
import { bundleFromMessage } from '../../../agent/upstream'
import type { BundleMessage } from '../../../agent/spire-api/messages'
import { parseTrustDomain } from '../../../spiffe/id'

const TD = parseTrustDomain('fleet.example')
const root = createTestCa(TD.name)
const jwtKey = generateKeyPair().publicKey.export({ type: 'spki', format: 'der' })
const message = (changes: Partial<BundleMessage> = {}): BundleMessage => ({
  trust_domain: TD.name,
  x509_authorities: [{ asn1: root.certDer, tainted: false }],
  jwt_authorities: [{ public_key: jwtKey, key_id: 'kid-1', expires_at: 0, tainted: false }],
  refresh_hint: 0,
  sequence_number: 7,
  ...changes
})

void t.test('upstream bundle – roots, JWT keys and the sequence number of our trust domain', async t => {
  const bundle = bundleFromMessage(message(), TD)
  t.same(bundle.x509.authorities.map(cert => cert.raw), [root.certDer])
  t.same([...bundle.jwt.keys.keys()], ['kid-1'])
  t.equal(bundle.sequence, 7)
  t.equal(bundle.refreshHintSeconds, undefined, 'SPIRE\'s 0 means no hint')
})

void t.test('upstream bundle – refused: another trust domain, no roots, unreadable parts', async t => {
  const cases: Array<[string, Partial<BundleMessage>, RegExp]> = [
    ['another trust domain', { trust_domain: 'other.example' }, /trust domain "other\.example"'s, not fleet\.example's/],
    ['no roots', { x509_authorities: [] }, /no X\.509 root/],
    ['a root that is not a certificate', { x509_authorities: [{ asn1: Buffer.from('junk'), tainted: false }] }, /refused/],
    ['a JWT key that is not a key', { jwt_authorities: [{ public_key: Buffer.from('junk'), key_id: 'k', expires_at: 0, tainted: false }] }, /refused/],
    ['a JWT key without a key ID', { jwt_authorities: [{ public_key: jwtKey, key_id: '', expires_at: 0, tainted: false }] }, /key ID/]
  ]
  for (const [what, changes, reason] of cases) {
    t.throws(() => bundleFromMessage(message(changes), TD), { code: 'ERR_UPSTREAM_BUNDLE_INVALID', message: reason }, what)
  }
})
