import t from 'tap'
import { createLocalJWKSet, jwtVerify } from 'jose'
import { splitConcatenatedDer } from '../../../spiffe/der'
import { foreignTrustDomain } from '../store/fixtures/foreign-trust-domain'
import { TD, startDelegatedStand } from './fixtures/delegated-stand'
import type { JwtBundlesMessage, X509BundlesMessage } from './fixtures/delegated-stand'

// SubscribeToX509Bundles and SubscribeToJWTBundles: our own trust domain's bundle and EVERY federated bundle the agent
// holds (not only those some entry federates with, unlike the Workload API), by trust domain ID, the whole set again
// on every change.

const OWN = `spiffe://${TD}`
const keysOf = (map: Record<string, Buffer>): string[] => Object.keys(map).sort()

void t.test('delegated bundles – ours and every federated bundle, set or deleted at runtime, the full set each time', async t => {
  const stand = await startDelegatedStand(t)
  const store = stand.agent.store
  const other = foreignTrustDomain('other.example')
  const third = foreignTrustDomain('third.example')
  store.setFederatedBundle({ trustDomain: other.name, format: 'spiffe', bundle: other.spiffeJson() })
  const client = stand.client()
  const x509 = client.subscribe<X509BundlesMessage>('SubscribeToX509Bundles')
  const jwt = client.subscribe<JwtBundlesMessage>('SubscribeToJWTBundles')

  const first = await x509.next(0, 'the first set')
  t.same(keysOf(first.ca_certificates), ['spiffe://other.example', OWN], 'ours and a federated bundle no entry federates with')
  t.ok(first.ca_certificates['spiffe://other.example'].equals(other.ca.certDer), 'the DER of its X.509 authority')
  t.same(splitConcatenatedDer(first.ca_certificates[OWN]).length, 1, 'our CA\'s root')
  const firstJwt = await jwt.next(0, 'the first set')
  t.same(keysOf(firstJwt.bundles), ['spiffe://other.example', OWN])
  const jwks = JSON.parse(firstJwt.bundles['spiffe://other.example'].toString()) as { keys: Array<Record<string, unknown>> }
  t.same(jwks.keys.map(key => [key.kid, key.use]), [[other.kid, undefined]], 'a plain JWK Set, keys without "use"')
  const token = await other.signJwt('/billing', 'spiffe://plant.example/app')
  const { payload } = await jwtVerify(token, createLocalJWKSet(jwks), { audience: 'spiffe://plant.example/app' })
  t.equal(payload.sub, 'spiffe://other.example/billing', 'jose verifies that trust domain\'s token with the JWKS as sent')

  // Added at runtime.
  let mark = [x509.messages.length, jwt.messages.length]
  store.setFederatedBundle({ trustDomain: third.name, format: 'pem', bundle: third.pem })
  t.same(keysOf((await x509.next(mark[0], 'third.example', m => 'spiffe://third.example' in m.ca_certificates)).ca_certificates), ['spiffe://other.example', OWN, 'spiffe://third.example'])
  t.same(keysOf((await jwt.next(mark[1], 'third.example', m => 'spiffe://third.example' in m.bundles)).bundles), ['spiffe://other.example', OWN, 'spiffe://third.example'])

  // Replaced.
  const rotated = foreignTrustDomain('other.example')
  mark = [x509.messages.length, jwt.messages.length]
  store.setFederatedBundle({ trustDomain: rotated.name, format: 'spiffe', bundle: rotated.spiffeJson() })
  t.ok(await x509.next(mark[0], 'the new authority', m => m.ca_certificates['spiffe://other.example']?.equals(rotated.ca.certDer) === true), 'replaced: the new authority')

  // Deleted: gone from the next message (SPIRE's agent keeps a deleted one in a stream's map; the full current set is sent here).
  mark = [x509.messages.length, jwt.messages.length]
  store.deleteFederatedBundle('third.example')
  t.same(keysOf((await x509.next(mark[0], 'no third.example', m => !('spiffe://third.example' in m.ca_certificates))).ca_certificates), ['spiffe://other.example', OWN])
  t.same(keysOf((await jwt.next(mark[1], 'no third.example', m => !('spiffe://third.example' in m.bundles))).bundles), ['spiffe://other.example', OWN])
})

void t.test('delegated bundles – our own bundle\'s changes are pushed: an appended authority', async t => {
  const stand = await startDelegatedStand(t)
  const client = stand.client()
  const x509 = client.subscribe<X509BundlesMessage>('SubscribeToX509Bundles')
  const jwt = client.subscribe<JwtBundlesMessage>('SubscribeToJWTBundles')
  await x509.next(0, 'the first set')
  await jwt.next(0, 'the first set')
  const extra = foreignTrustDomain('extra.example')
  const mark = [x509.messages.length, jwt.messages.length]
  stand.agent.store.appendAuthorities({ x509: [extra.ca.certDer] }, stand.agent.ca.bundle())
  const appended = await x509.next(mark[0], 'two authorities', m => splitConcatenatedDer(m.ca_certificates[OWN]).length === 2)
  t.ok(splitConcatenatedDer(appended.ca_certificates[OWN]).some(der => Buffer.from(der).equals(extra.ca.certDer)), 'the appended authority is in our bundle')
  t.ok(await jwt.next(mark[1], 'a new message'), 'the JWT bundle stream is updated too')
})
