/**
 * Publishing the device's JWT key (publishJwtAuthority) to a stand-in for SPIRE's Bundle service
 * (fixtures/fake-spire-server.ts, TLS requiring a client certificate): the downstream SVID is the client certificate,
 * the key goes as PKIX DER with its key ID and expiry in seconds, and the answer's authorities come back as keys
 * (expires_at 0: no expiry). Refused answers, which SPIRE never sends: an authority without a key ID or a readable
 * key (ERR_UPSTREAM_BUNDLE_INVALID, naming it), or one that lacks our key or holds another key under its ID
 * (ERR_JWT_AUTHORITY_NOT_PUBLISHED). The real SPIRE server is in test/interop/spire-publish-jwt.interop.ts.
 */
import t from 'tap'
import type { ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js'
import { X509Certificate } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { generateKeyPair } from '../../../certs-test'
import { publishJwtAuthority } from '../../../agent/upstream/publish-jwt-authority'
import { upstreamServer } from '../../../agent/upstream'
import { BundleService } from '../../../agent/spire-api/grpc-proto'
import type { JwtKeyMessage } from '../../../agent/spire-api/messages'
import { parseTrustDomain } from '../../../spiffe/id'
import { TRUST_DOMAIN, startFakeServices } from './fixtures/fake-spire-server'

type Publish = ServerUnaryCall<{ jwt_authority: JwtKeyMessage }, unknown>

const DEVICE_ID = `spiffe://${TRUST_DOMAIN}/device/SN-1`
const ours = { keyId: 'device-key', ...generateKeyPair(), expiresAt: new Date('2030-01-02T03:04:05Z') }
const spires = { keyId: 'spire-key', ...generateKeyPair() }
const authority = (key: { keyId: string, publicKey: KeyObject }, expiresAt = 0): JwtKeyMessage =>
  ({ key_id: key.keyId, public_key: key.publicKey.export({ type: 'spki', format: 'der' }), expires_at: expiresAt, tainted: false })
const failure = async (work: Promise<unknown>): Promise<unknown> => await work.then(() => new Error('succeeded, but should have failed'), (err: unknown) => err)

void t.test('publish JWT authority – as the downstream entry, our key goes up and the union comes back', async t => {
  let answer: (published: JwtKeyMessage) => JwtKeyMessage[] = published => [authority(spires, 1_900_000_000), published]
  const seen: Array<{ request: JwtKeyMessage, peer?: Buffer }> = []
  const fake = await startFakeServices(t, () => [[BundleService(), {
    PublishJWTAuthority: ((call: Publish, callback: sendUnaryData<unknown>) => {
      seen.push({ request: call.request.jwt_authority, peer: call.getAuthContext().sslPeerCertificate?.raw })
      callback(null, { jwt_authorities: answer(call.request.jwt_authority) })
    })
  }]], { requireClientCertificate: true })
  const server = upstreamServer(fake.address, parseTrustDomain(TRUST_DOMAIN), fake.bundlePem)
  const downstream = fake.ca.issueSvid(DEVICE_ID)
  const publish = async (): Promise<unknown> => await publishJwtAuthority(server, downstream, ours, { timeoutMs: 5000 })

  t.match(await publish(), [
    { keyId: 'spire-key', expiresAt: new Date(1_900_000_000 * 1000) },
    { keyId: 'device-key', expiresAt: ours.expiresAt }
  ], 'SPIRE\'s key and ours, with their expiry')
  const [{ request, peer }] = seen
  t.same(request, authority(ours, Math.floor(ours.expiresAt.getTime() / 1000)), 'our key as PKIX DER, its key ID, its expiry in seconds')
  t.equal(new X509Certificate(peer ?? Buffer.alloc(0)).subjectAltName, `URI:${DEVICE_ID}`, 'the downstream SVID is the client certificate')

  answer = () => [authority(spires), authority(ours)]
  const [, returned] = await publishJwtAuthority(server, downstream, ours)
  t.ok(returned.publicKey.equals(ours.publicKey), 'the returned key is ours')
  t.equal(returned.expiresAt, undefined, 'expires_at 0: no expiry')

  const refusals: Array<[string, () => JwtKeyMessage[], object]> = [
    ['an authority without a key ID', () => [authority(ours), { ...authority(spires), key_id: '' }],
      { code: 'ERR_UPSTREAM_BUNDLE_INVALID', message: 'the JWT authorities from PublishJWTAuthority are refused: a JWT authority has no key ID' }],
    ['an authority whose key cannot be read', () => [authority(ours), { ...authority(spires), public_key: Buffer.from('junk') }],
      { code: 'ERR_UPSTREAM_BUNDLE_INVALID', message: /refused: JWT authority "spire-key" has no readable public key: / }],
    ['an answer without our key', () => [authority(spires)],
      { code: 'ERR_JWT_AUTHORITY_NOT_PUBLISHED', message: `PublishJWTAuthority on SPIRE server ${fake.address} did not take JWT key "device-key": its answer does not list it` }],
    ['another key under our key ID', () => [authority(spires), authority({ keyId: ours.keyId, publicKey: spires.publicKey })],
      { code: 'ERR_JWT_AUTHORITY_NOT_PUBLISHED', message: /its answer lists another public key under its key ID$/ }]
  ]
  for (const [what, refused, expected] of refusals) {
    answer = refused
    t.match(await failure(publish()), expected, what)
  }
})
