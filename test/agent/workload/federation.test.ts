import t from 'tap'
import { Metadata, credentials } from '@grpc/grpc-js'
import type { ClientReadableStream } from '@grpc/grpc-js'
import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLocalJWKSet, jwtVerify } from 'jose'
import pino from 'pino'
import { Agent } from '../../../agent/agent'
import { loadAgentConfig } from '../../../agent/config'
import type { FederatedBundleInput } from '../../../agent/store'
import { WorkloadClient } from '../../../spiffe/workload-client'
import { workloadApiService } from '../../../spiffe/workload-proto'
import { parseX509Bundles, parseX509SvidResponse } from '../../../spiffe/workload-messages'
import type { JwtBundlesResponseMessage, X509BundlesResponseMessage, X509SvidResponseMessage } from '../../../spiffe/workload-messages'
import { BundleSet } from '../../../spiffe/bundle-set'
import { SpiffeBundle } from '../../../spiffe/spiffe-bundle'
import { parseSpiffeId } from '../../../spiffe/id'
import { verifyX509Svid } from '../../../spiffe/x509-svid'
import { foreignTrustDomain } from '../store/fixtures/foreign-trust-domain'

// A real agent on a real socket (plant.example); this test process is the workload, registered by its uid.
const uid = process.getuid?.() ?? 0
const dir = mkdtempSync(join(tmpdir(), 'chaperone-fed-'))
chmodSync(dir, 0o755)
const socket = join(dir, 'workload.sock')
let agent: Agent
t.before(async () => {
  agent = await Agent.start(loadAgentConfig(undefined, { trustDomain: 'plant.example', dataDir: join(dir, 'data'), socket, adminSocket: join(dir, 'admin.sock'), serverSocket: join(dir, 'server.sock') }), pino({ level: 'silent' }))
})
t.teardown(async () => {
  await agent.stop()
  rmSync(dir, { recursive: true, force: true })
})

const OWN = 'spiffe://plant.example'
const other = foreignTrustDomain('other.example')
const third = foreignTrustDomain('third.example')
const later = foreignTrustDomain('later.example')
const spiffe = (td: { name: string, spiffeJson: () => string }): FederatedBundleInput => ({ trustDomain: td.name, format: 'spiffe', bundle: td.spiffeJson() })
const pem = (td: { id: string, pem: string }): FederatedBundleInput => ({ trustDomain: td.id, format: 'pem', bundle: td.pem })

type Method = 'FetchX509SVID' | 'FetchX509Bundles' | 'FetchJWTBundles'

/** A stream as any client receives it (decoded by protobuf only), recording every message. */
class RawStream<M> {
  readonly messages: M[] = []
  readonly #call: ClientReadableStream<M>
  readonly #client: InstanceType<ReturnType<typeof workloadApiService>>

  constructor (method: Method) {
    const Service = workloadApiService()
    this.#client = new Service(`unix:${socket}`, credentials.createInsecure())
    const metadata = new Metadata()
    metadata.set('workload.spiffe.io', 'true')
    this.#call = (this.#client as unknown as Record<Method, (req: object, md: Metadata) => ClientReadableStream<M>>)[method]({}, metadata)
    this.#call.on('data', (message: M) => { this.messages.push(message) })
    this.#call.on('error', () => {})
  }

  /** The first message from index `from` on that passes `test` (waiting up to 10 s). */
  async next (from: number, what: string, test: (message: M) => boolean = () => true): Promise<M> {
    const deadline = Date.now() + 10_000
    for (;;) {
      const found = this.messages.slice(from).find(test)
      if (found !== undefined) return found
      if (Date.now() > deadline) throw new Error(`no message with ${what} after #${from}; got ${this.messages.length}`)
      await new Promise(resolve => setTimeout(resolve, 10))
    }
  }

  close (): void {
    this.#call.cancel()
    this.#client.close()
  }
}

const keysOf = (map: Record<string, Buffer>): string[] => Object.keys(map).sort()
const jwks = (message: JwtBundlesResponseMessage, td: string): { keys: Array<Record<string, unknown>> } => JSON.parse(message.bundles[td].toString()) as { keys: Array<Record<string, unknown>> }

void t.test('federation – a federated bundle reaches only callers whose entries federate with it, and every change to it is pushed', async t => {
  agent.store.setFederatedBundle(spiffe(other))
  agent.store.setFederatedBundle(pem(third))
  // Another workload (a uid that is not ours) federates with third.example: that is no business of ours.
  const elsewhere = agent.store.createEntry({ spiffeId: 'spiffe://plant.example/elsewhere', selectors: ['unix:uid:4242'], federatesWith: ['third.example'] })
  const mine = agent.store.createEntry({ spiffeId: 'spiffe://plant.example/fed', selectors: [`unix:uid:${uid}`] })
  const svids = new RawStream<X509SvidResponseMessage>('FetchX509SVID')
  const x509 = new RawStream<X509BundlesResponseMessage>('FetchX509Bundles')
  const jwt = new RawStream<JwtBundlesResponseMessage>('FetchJWTBundles')
  t.teardown(() => {
    for (const stream of [svids, x509, jwt]) stream.close()
    for (const entry of agent.store.listEntries()) agent.store.deleteEntry(entry.id)
    for (const held of agent.store.listFederatedBundles()) agent.store.deleteFederatedBundle(held.trustDomain.name)
  })

  t.same(keysOf((await svids.next(0, 'the first state')).federated_bundles), [], 'an entry without federatesWith: no federated bundle')
  t.same(keysOf((await x509.next(0, 'the first state')).bundles), [OWN], 'FetchX509Bundles: our own only')
  t.same(keysOf((await jwt.next(0, 'the first state')).bundles), [OWN], 'FetchJWTBundles: our own only')

  // Federating with a trust domain that has a bundle, and with one that has none yet (accepted, served once set).
  let mark = [svids.messages.length, x509.messages.length, jwt.messages.length]
  agent.store.updateEntry(mine.id, { federatesWith: ['other.example', 'later.example'] })
  const federated = await svids.next(mark[0], 'other.example', m => 'spiffe://other.example' in m.federated_bundles)
  t.same(keysOf(federated.federated_bundles), ['spiffe://other.example'], 'the bundle held is served; later.example has none yet; third.example is another caller\'s')
  t.ok(federated.federated_bundles['spiffe://other.example'].equals(other.ca.certDer), 'the DER of its X.509 authority')
  // The sidecar's side: the message parses, and the federated bundle verifies that trust domain's SVIDs.
  const parsed = parseX509SvidResponse(federated)
  const theirs = other.ca.issueSvid('spiffe://other.example/billing')
  const trusted = new BundleSet([...parsed.federatedBundles.values()].map(b => new SpiffeBundle(b.trustDomain, { x509: b })))
  t.equal(String(verifyX509Svid(theirs.chain, trusted)), 'spiffe://other.example/billing', 'an SVID of other.example verifies against it')
  t.same([...parsed.federatedBundles.keys()], ['other.example'])
  const bundles = await x509.next(mark[1], 'other.example', m => 'spiffe://other.example' in m.bundles)
  t.same(keysOf(bundles.bundles), ['spiffe://other.example', OWN], 'FetchX509Bundles: ours and the federated one')
  t.same([...parseX509Bundles(bundles).keys()].sort(), ['other.example', 'plant.example'])
  const jwtBundles = await jwt.next(mark[2], 'other.example', m => 'spiffe://other.example' in m.bundles)
  t.same(keysOf(jwtBundles.bundles), ['spiffe://other.example', OWN], 'FetchJWTBundles: ours and the federated one')
  t.same(jwks(jwtBundles, 'spiffe://other.example').keys.map(key => [key.kid, key.use]), [[other.kid, undefined]], 'a plain JWK Set: the key, without "use"')
  // Independent of our code: jose verifies other.example's token with the JWKS exactly as it went on the wire.
  const token = await other.signJwt('/billing', 'spiffe://plant.example/fed')
  const { payload } = await jwtVerify(token, createLocalJWKSet(jwks(jwtBundles, 'spiffe://other.example')), { audience: 'spiffe://plant.example/fed' })
  t.equal(payload.sub, 'spiffe://other.example/billing')

  // A set for a trust domain none of our entries names is not pushed to our streams: one message for the next change.
  mark = [svids.messages.length, x509.messages.length, jwt.messages.length]
  agent.store.setFederatedBundle(pem(third))
  agent.store.setFederatedBundle(pem(later))
  await svids.next(mark[0], 'later.example', m => 'spiffe://later.example' in m.federated_bundles)
  await x509.next(mark[1], 'later.example', m => 'spiffe://later.example' in m.bundles)
  await jwt.next(mark[2], 'later.example', m => 'spiffe://later.example' in m.bundles)
  t.same([svids.messages.length - mark[0], x509.messages.length - mark[1], jwt.messages.length - mark[2]], [1, 1, 1],
    'the bundle an entry named before it existed is pushed once it is set; third.example\'s was not pushed at all')
  t.same(keysOf(svids.messages.at(-1)?.federated_bundles ?? {}), ['spiffe://later.example', 'spiffe://other.example'], 'the union over the caller\'s entries')

  // Replaced: the new authority is pushed.
  const rotated = foreignTrustDomain('other.example')
  mark = [svids.messages.length, x509.messages.length, jwt.messages.length]
  agent.store.setFederatedBundle(spiffe(rotated))
  const afterRotation = await svids.next(mark[0], 'the new authority', m => m.federated_bundles['spiffe://other.example']?.equals(rotated.ca.certDer) === true)
  t.ok(afterRotation, 'X509-SVID stream: the replaced bundle')
  t.ok((await x509.next(mark[1], 'the new authority', m => m.bundles['spiffe://other.example']?.equals(rotated.ca.certDer) === true)), 'X.509 bundle stream too')
  t.ok((await jwt.next(mark[2], 'the new key', m => jwks(m, 'spiffe://other.example').keys[0]?.x === rotated.jwtPublicKey.x)), 'JWT bundle stream too')

  // Deleted: gone from every stream.
  mark = [svids.messages.length, x509.messages.length, jwt.messages.length]
  agent.store.deleteFederatedBundle('later.example')
  t.same(keysOf((await svids.next(mark[0], 'later.example gone', m => !('spiffe://later.example' in m.federated_bundles))).federated_bundles), ['spiffe://other.example'], 'a deleted bundle is withdrawn')
  t.same(keysOf((await x509.next(mark[1], 'later.example gone', m => !('spiffe://later.example' in m.bundles))).bundles), ['spiffe://other.example', OWN])
  t.same(keysOf((await jwt.next(mark[2], 'later.example gone', m => !('spiffe://later.example' in m.bundles))).bundles), ['spiffe://other.example', OWN])

  // The entry stops federating: the bundle is withdrawn though still held.
  mark = [svids.messages.length, x509.messages.length, jwt.messages.length]
  agent.store.updateEntry(mine.id, { federatesWith: [] })
  t.same(keysOf((await svids.next(mark[0], 'no federation', m => keysOf(m.federated_bundles).length === 0)).federated_bundles), [])
  t.same(keysOf((await x509.next(mark[1], 'no federation', m => keysOf(m.bundles).length === 1)).bundles), [OWN])
  t.same(keysOf((await jwt.next(mark[2], 'no federation', m => keysOf(m.bundles).length === 1)).bundles), [OWN])
  t.ok(agent.store.findFederatedBundle('other.example'), 'the bundle itself is still held')
  agent.store.deleteEntry(elsewhere.id)
})

void t.test('federation – ValidateJWTSVID accepts another trust domain\'s token only for a caller whose entries federate with it (as SPIRE\'s agent)', async t => {
  const client = new WorkloadClient(`unix://${socket}`)
  t.teardown(() => {
    client.close()
    for (const entry of agent.store.listEntries()) agent.store.deleteEntry(entry.id)
    for (const held of agent.store.listFederatedBundles()) agent.store.deleteFederatedBundle(held.trustDomain.name)
  })
  const audience = 'spiffe://plant.example/api'
  const theirs = await other.signJwt('/billing', audience)
  const { token: ours } = await agent.ca.mintJwtSvid({ spiffeId: parseSpiffeId('spiffe://plant.example/caller'), audience: [audience] })
  const refusal = async (token: string, aud = audience): Promise<unknown> => await client.validateJwtSvid(token, aud).then(() => undefined, (err: unknown) => err)

  agent.store.setFederatedBundle(spiffe(other))
  t.equal((await client.validateJwtSvid(ours, audience)).spiffeId, 'spiffe://plant.example/caller', 'a caller without an entry validates our own trust domain\'s tokens')
  t.match(await refusal(theirs), { code: 'ERR_WORKLOAD_API_INVALID_REQUEST', message: /other\.example/ }, 'but not another\'s, though the agent holds its bundle')

  const entry = agent.store.createEntry({ spiffeId: 'spiffe://plant.example/verifier', selectors: [`unix:uid:${uid}`], federatesWith: ['other.example'] })
  const validated = await client.validateJwtSvid(theirs, audience)
  t.equal(validated.spiffeId, 'spiffe://other.example/billing', 'an entry federating with other.example: its token validates')
  t.equal(validated.claims.aud, audience, 'with its claims')
  t.match(await refusal(theirs, 'spiffe://plant.example/elsewhere'), { code: 'ERR_WORKLOAD_API_INVALID_REQUEST' }, 'for its audience only')
  t.match(await refusal(await third.signJwt('/x', audience)), { code: 'ERR_WORKLOAD_API_INVALID_REQUEST' }, 'a trust domain the entry does not name stays refused')

  agent.store.deleteFederatedBundle('other.example')
  t.match(await refusal(theirs), { code: 'ERR_WORKLOAD_API_INVALID_REQUEST' }, 'the bundle deleted: refused again')
  agent.store.setFederatedBundle(spiffe(other))
  agent.store.updateEntry(entry.id, { federatesWith: [] })
  t.match(await refusal(theirs), { code: 'ERR_WORKLOAD_API_INVALID_REQUEST' }, 'the entry no longer federating: refused')
})
