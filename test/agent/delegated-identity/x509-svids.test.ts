import t from 'tap'
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { status } from '@grpc/grpc-js'
import { BundleSet } from '../../../spiffe/bundle-set'
import { parseTrustDomain } from '../../../spiffe/id'
import { SpiffeBundle } from '../../../spiffe/spiffe-bundle'
import { X509Bundle } from '../../../spiffe/x509-bundle'
import { verifyX509Svid } from '../../../spiffe/x509-svid'
import { OPENSSL_MISSING } from '../../helpers/openssl'
import { foreignTrustDomain } from '../store/fixtures/foreign-trust-domain'
import { TD, startDelegatedStand } from './fixtures/delegated-stand'
import type { DelegatedStand, SvidWithKey, X509BundlesMessage, X509SvidsMessage } from './fixtures/delegated-stand'

// SubscribeToX509SVIDs by selectors: the SVIDs (with keys) of every entry the selectors match, as SPIRE's agent
// sends them, the whole set again on every change; admin and downstream entries' SVIDs are never handed out.

const SUBJECT = [{ type: 'unix', value: 'uid:64401' }]
const ids = (message: X509SvidsMessage): string[] => message.x509_svids.map(svid => `spiffe://${svid.x509_svid.id.trust_domain}${svid.x509_svid.id.path}`)
const serial = (svid: SvidWithKey): string => new X509Certificate(svid.x509_svid.cert_chain[0]).serialNumber

/** Our own trust domain's X.509 authorities, as SubscribeToX509Bundles sends them. */
async function ownBundle (stand: DelegatedStand): Promise<BundleSet> {
  const first = await stand.client().subscribe<X509BundlesMessage>('SubscribeToX509Bundles').next(0, 'the bundles')
  const td = parseTrustDomain(TD)
  return new BundleSet([new SpiffeBundle(td, { x509: X509Bundle.fromDer(td, first.ca_certificates[`spiffe://${TD}`]) })])
}

void t.test('delegated x509 – by selectors: each matching entry\'s SVID, a chain that verifies, its PKCS#8 key, SPIRE\'s fields', async t => {
  const stand = await startDelegatedStand(t)
  const store = stand.agent.store
  const app = store.createEntry({ spiffeId: `spiffe://${TD}/app`, selectors: ['unix:uid:64401'], hint: 'internal' })
  store.createEntry({ spiffeId: `spiffe://${TD}/narrower`, selectors: ['unix:uid:64401', 'unix:gid:64401'] })
  store.createEntry({ spiffeId: `spiffe://${TD}/admin-tool`, selectors: ['unix:uid:64401'], admin: true })
  store.createEntry({ spiffeId: `spiffe://${TD}/nested-server`, selectors: ['unix:uid:64401'], downstream: true })
  store.createEntry({ spiffeId: `spiffe://${TD}/other`, selectors: ['unix:uid:64402'] })

  const stream = stand.client().subscribe<X509SvidsMessage>('SubscribeToX509SVIDs', { selectors: SUBJECT })
  const first = await stream.next(0, 'the SVIDs')
  t.same(ids(first), [`spiffe://${TD}/app`], 'only the entry the selectors match; not the narrower one, the admin or the downstream one, nor another workload\'s')
  t.same(first.federates_with, [])
  const [svid] = first.x509_svids
  t.same(svid.x509_svid.id, { trust_domain: TD, path: '/app' }, 'the ID in parts')
  t.equal(svid.x509_svid.hint, 'internal')
  const leaf = new X509Certificate(svid.x509_svid.cert_chain[0])
  t.equal(svid.x509_svid.expires_at, Math.floor(new Date(leaf.validTo).getTime() / 1000), 'expires_at: the leaf\'s notAfter in seconds')
  t.equal(String(verifyX509Svid(svid.x509_svid.cert_chain, await ownBundle(stand))), `spiffe://${TD}/app`, 'the chain verifies against our bundle')
  const key = createPrivateKey({ key: svid.x509_svid_key, format: 'der', type: 'pkcs8' })
  t.ok(createPublicKey(key).export({ type: 'spki', format: 'der' }).equals(leaf.publicKey.export({ type: 'spki', format: 'der' })), 'the PKCS#8 key is the leaf\'s')
  const cached = await stand.agent.workloadApi.cache.get(app)
  t.ok(Buffer.concat(svid.x509_svid.cert_chain).equals(cached.chainDer), 'the very SVID the Workload API gives that workload')
  t.match(stand.logs().filter(l => l.msg === 'delegated identity API: subscription opened'), [{ stream: 'x509-svids', selectors: ['unix:uid:64401'], svids: 1 }], 'logged with the selectors and the number of SVIDs')
})

void t.test('delegated x509 – the whole set again on every change: entries created, updated, deleted; rotation; federation', async t => {
  const stand = await startDelegatedStand(t)
  const store = stand.agent.store
  const other = foreignTrustDomain('other.example')
  const app = store.createEntry({ spiffeId: `spiffe://${TD}/app`, selectors: ['unix:uid:64401'] })
  const stream = stand.client().subscribe<X509SvidsMessage>('SubscribeToX509SVIDs', { selectors: SUBJECT })
  await stream.next(0, 'the first set', m => m.x509_svids.length === 1)

  let mark = stream.messages.length
  const second = store.createEntry({ spiffeId: `spiffe://${TD}/second`, selectors: ['unix:uid:64401'] })
  t.same(ids(await stream.next(mark, 'two SVIDs', m => m.x509_svids.length === 2)), [`spiffe://${TD}/app`, `spiffe://${TD}/second`], 'created: both, in creation order')

  mark = stream.messages.length
  store.updateEntry(second.id, { hint: 'renamed' })
  t.equal((await stream.next(mark, 'the hint', m => m.x509_svids[1]?.x509_svid.hint === 'renamed')).x509_svids.length, 2, 'updated: the set again')

  mark = stream.messages.length
  store.setFederatedBundle({ trustDomain: other.name, format: 'pem', bundle: other.pem })
  store.updateEntry(app.id, { federatesWith: ['other.example'] })
  t.same((await stream.next(mark, 'federates_with', m => m.federates_with.length === 1)).federates_with, ['spiffe://other.example'], 'federates_with: trust domain IDs')

  mark = stream.messages.length
  store.deleteEntry(second.id)
  t.same(ids(await stream.next(mark, 'one SVID', m => m.x509_svids.length === 1)), [`spiffe://${TD}/app`], 'deleted: gone from the set')

  mark = stream.messages.length
  store.deleteEntry(app.id)
  t.same((await stream.next(mark, 'none', m => m.x509_svids.length === 0)).x509_svids, [], 'the last one deleted: an empty set, and the stream stays open (as SPIRE)')
  t.equal(await stream.endedWithin(200), undefined)

  // Rotation: an entry with a 4 s SVID is renewed at about half of it, and the new SVID is pushed.
  mark = stream.messages.length
  store.createEntry({ spiffeId: `spiffe://${TD}/short`, selectors: ['unix:uid:64401'], x509SvidTtl: 4 })
  const before = await stream.next(mark, 'the short-lived SVID', m => m.x509_svids.length === 1)
  const renewed = await stream.next(stream.messages.indexOf(before) + 1, 'a renewed SVID', m => m.x509_svids.length === 1 && serial(m.x509_svids[0]) !== serial(before.x509_svids[0]))
  t.ok(renewed.x509_svids[0].x509_svid.expires_at > before.x509_svids[0].x509_svid.expires_at, 'renewed: a new SVID that lives longer')
})

void t.test('delegated x509 – bad requests get SPIRE\'s INVALID_ARGUMENT and a warn line', async t => {
  const stand = await startDelegatedStand(t)
  const client = stand.client()
  const cases: Array<[object, string]> = [
    [{ selectors: SUBJECT, pid: process.pid }, 'must provide either selectors or non-zero PID, but not both'],
    [{}, 'must provide either selectors or non-zero PID, but not both'],
    [{ selectors: [{ type: 'unix:uid', value: '1' }] }, 'could not parse provided selectors'],
    [{ selectors: [{ type: '', value: 'uid:1' }] }, 'could not parse provided selectors'],
    [{ selectors: [{ type: 'unix', value: '' }] }, 'could not parse provided selectors'],
    [{ pid: -5 }, 'pid must be a positive process ID, not -5']
  ]
  for (const [request, details] of cases) {
    t.match(await client.subscribe('SubscribeToX509SVIDs', request).endedWithin(5000), { code: status.INVALID_ARGUMENT, details }, `${JSON.stringify(request)}: "${details}"`)
  }
  t.match(stand.logs().filter(l => l.msg === 'delegated identity API: request refused'), [{ level: 40, method: 'SubscribeToX509SVIDs', code: 'INVALID_ARGUMENT', reason: cases[0][1] }])
  // A selector SPIRE would accept but our attestors never produce is simply matched (as SPIRE): no entry, no SVID.
  t.same((await client.subscribe<X509SvidsMessage>('SubscribeToX509SVIDs', { selectors: [{ type: 'k8s', value: 'ns:default' }] }).next(0, 'a set')).x509_svids, [])
  t.match(await client.subscribe('SubscribeToX509SVIDs', { pid: 2147483647 }).endedWithin(5000), { code: status.NOT_FOUND, details: 'process 2147483647 does not exist' })

  // Hostile sizes: 20,000 selectors, control characters, a long value; answered, logged in brief, and the agent goes on.
  stand.agent.store.createEntry({ spiffeId: `spiffe://${TD}/app`, selectors: ['unix:uid:64401'] })
  const many = [...Array.from({ length: 20_000 }, (_, i) => ({ type: 'x', value: `\u0000\n${i}${'v'.repeat(50)}` })), ...SUBJECT]
  t.same(ids(await client.subscribe<X509SvidsMessage>('SubscribeToX509SVIDs', { selectors: many }).next(0, 'a set')), [`spiffe://${TD}/app`], 'matched among them')
  t.match(stand.logs().find(l => l.msg === 'delegated identity API: subscription opened' && l.selectorCount === 20_001), { selectors: { length: 16 } }, 'the log line shows 16 of them and the count')
  t.same(ids(await client.subscribe<X509SvidsMessage>('SubscribeToX509SVIDs', { selectors: SUBJECT }).next(0, 'a set')), [`spiffe://${TD}/app`], 'still serving')
})

void t.test('delegated x509 – the chain carries the CA\'s intermediate, leaf first, as the Workload API does', { skip: OPENSSL_MISSING }, async t => {
  const dir = t.testdir({})
  const certFile = join(dir, 'upstream.pem')
  const keyFile = join(dir, 'upstream.key')
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '30',
    '-subj', '/O=Operator/CN=upstream', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], { encoding: 'utf8' })
  t.equal(made.status, 0, made.stderr)
  const nested = await startDelegatedStand(t, { ca: { keyType: 'ec-p256', ttlSeconds: 86400, upstream: { certFile, keyFile } } })
  const app = nested.agent.store.createEntry({ spiffeId: `spiffe://${TD}/app`, selectors: ['unix:uid:64401'] })
  const first = await nested.client().subscribe<X509SvidsMessage>('SubscribeToX509SVIDs', { selectors: SUBJECT }).next(0, 'the SVID', m => m.x509_svids.length === 1)
  const chain = first.x509_svids[0].x509_svid.cert_chain
  t.equal(chain.length, 2, 'the leaf and the agent\'s intermediate')
  t.ok(new X509Certificate(chain[0]).checkIssued(new X509Certificate(chain[1])), 'leaf first, then its issuer')
  t.ok(Buffer.concat(chain).equals((await nested.agent.workloadApi.cache.get(app)).chainDer), 'exactly the Workload API\'s chain')
  t.equal(String(verifyX509Svid(chain, await ownBundle(nested))), `spiffe://${TD}/app`)
})
