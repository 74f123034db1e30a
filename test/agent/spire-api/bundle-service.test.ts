import t from 'tap'
import { X509Certificate, generateKeyPairSync } from 'node:crypto'
import { createTestCa } from '../../../certs-test'
import { WorkloadClient } from '../../../spiffe/workload-client'
import type { BundleMessage } from '../../../agent/spire-api/messages'
import { CODE, TD, entry, startSpireApiStand } from './fixtures/spire-api-stand'
import type { SpireApiStand } from './fixtures/spire-api-stand'

// SPIRE's Bundle service on the SPIRE server socket: our own bundle is the CA's; federated bundles are the store's,
// written one item at a time with SPIRE's codes and messages, paged as SPIRE pages, and served to the workloads
// whose entries federate with them.

interface Result { status: { code: number, message: string }, bundle: BundleMessage | null }
const uid = process.getuid?.() ?? 0

/** A bundle message as a client sends it: one X.509 authority, one JWT authority. */
function federated (trustDomain: string, fields: Partial<BundleMessage> = {}): Partial<BundleMessage> {
  const jwtKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' })
  return {
    trust_domain: trustDomain,
    x509_authorities: [{ asn1: createTestCa(trustDomain).certDer, tainted: false }],
    jwt_authorities: [{ public_key: jwtKey, key_id: `${trustDomain}-key`, expires_at: 0, tainted: false }],
    refresh_hint: 300,
    sequence_number: 7,
    ...fields
  }
}

const batch = async (stand: SpireApiStand, method: string, request: object): Promise<Result[]> =>
  (await stand.call<{ results: Result[] }>(method, request, 'bundle')).results

void t.test('bundle service – GetBundle: the CA\'s X.509 authorities, JWT keys with their expiry, sequence and refresh hint; output mask', async t => {
  const stand = await startSpireApiStand(t)
  const ours = stand.agent.ca.bundle()
  const bundle = await stand.call<BundleMessage>('GetBundle', {}, 'bundle')
  t.equal(bundle.trust_domain, TD)
  t.same(bundle.x509_authorities.map(a => Buffer.from(a.asn1).toString('base64')), ours.x509.authorities.map(c => c.raw.toString('base64')))
  t.same(bundle.jwt_authorities.map(k => k.key_id), [...ours.jwt.keys.keys()])
  const expiries = new Map(stand.agent.ca.status().jwt.map(k => [k.kid, Math.floor(k.notAfter.getTime() / 1000)]))
  t.ok(bundle.jwt_authorities.every(k => k.expires_at === expiries.get(k.key_id) && k.expires_at > 0), 'JWT keys carry the CA\'s expiry')
  t.equal(bundle.sequence_number, ours.sequence ?? 0)
  t.equal(bundle.refresh_hint, ours.refreshHintSeconds ?? 0)
  const masked = await stand.call<BundleMessage>('GetBundle', { output_mask: { x509_authorities: true } }, 'bundle')
  t.equal(masked.x509_authorities.length, ours.x509.size)
  t.same([masked.jwt_authorities, masked.sequence_number, masked.refresh_hint], [[], 0, 0], 'what the mask leaves out is zero')
  t.match((await stand.failure('PublishJWTAuthority', {}, 'bundle'))?.details, '/spire.api.server.bundle.v1.Bundle/PublishJWTAuthority is not implemented')
})

void t.test('bundle service – batch create, set, update: per-item results in request order with SPIRE\'s codes and messages', async t => {
  const stand = await startSpireApiStand(t)
  const created = await batch(stand, 'BatchCreateFederatedBundle', {
    bundle: [federated('a.example'), federated('a.example'), federated(TD), federated('Bad.Example'), federated(''),
      federated('b.example', { x509_authorities: [{ asn1: Buffer.from('not a certificate'), tainted: false }] }),
      federated('c.example', { jwt_authorities: [{ public_key: federated('x').jwt_authorities?.[0].public_key, key_id: '' }] as BundleMessage['jwt_authorities'] }),
      federated('d.example', { x509_authorities: [], jwt_authorities: [] }),
      federated('spiffe://e.example')]
  })
  t.same(created.map(r => [r.status.code, r.status.message]), [
    [CODE.OK, 'OK'],
    [CODE.ALREADY_EXISTS, 'bundle already exists'],
    [CODE.INVALID_ARGUMENT, 'creating a federated bundle for the server\'s own trust domain is not allowed'],
    [CODE.INVALID_ARGUMENT, 'trust domain argument is not valid: trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores'],
    [CODE.INVALID_ARGUMENT, 'trust domain argument is not valid: trust domain is missing'],
    [CODE.INVALID_ARGUMENT, created[5].status.message],
    [CODE.INVALID_ARGUMENT, 'failed to convert bundle: unable to parse JWT authority: missing key ID'],
    [CODE.INVALID_ARGUMENT, created[7].status.message],
    [CODE.OK, 'OK']
  ])
  t.match(created[5].status.message, /^failed to convert bundle: unable to parse X\.509 authority: /)
  t.match(created[7].status.message, /^failed to convert bundle: .*trust nothing/, 'an empty bundle is refused: it would trust nothing')
  t.same(created[0].bundle?.trust_domain, 'a.example')
  t.same([created[0].bundle?.sequence_number, created[0].bundle?.refresh_hint, created[0].bundle?.jwt_authorities[0].key_id], [7, 300, 'a.example-key'], 'echoed back')
  t.equal(created[8].bundle?.trust_domain, 'e.example', 'a trust domain given as its ID')

  const set = await batch(stand, 'BatchSetFederatedBundle', { bundle: [federated('a.example', { sequence_number: 8 }), federated('f.example'), federated(TD)], output_mask: { sequence_number: true } })
  t.same(set.map(r => r.status.code), [CODE.OK, CODE.OK, CODE.INVALID_ARGUMENT])
  t.equal(set[2].status.message, 'setting a federated bundle for the server\'s own trust domain is not allowed')
  t.same(set[0].bundle, { trust_domain: 'a.example', x509_authorities: [], jwt_authorities: [], refresh_hint: 0, sequence_number: 8 }, 'set replaces; the output mask applies')

  const before = await stand.call<BundleMessage>('GetFederatedBundle', { trust_domain: 'a.example' }, 'bundle')
  const updated = await batch(stand, 'BatchUpdateFederatedBundle', {
    bundle: [federated('a.example', { sequence_number: 9, refresh_hint: 60 }), federated('nope.example'), federated(TD)],
    input_mask: { sequence_number: true }
  })
  t.same(updated.map(r => [r.status.code, r.status.message]), [[CODE.OK, 'OK'], [CODE.NOT_FOUND, 'bundle not found'],
    [CODE.INVALID_ARGUMENT, 'updating a federated bundle for the server\'s own trust domain is not allowed']])
  t.same(updated[0].bundle, { ...before, sequence_number: 9 }, 'with an input mask only the fields it names change')
  const replaced = await batch(stand, 'BatchUpdateFederatedBundle', { bundle: [federated('a.example', { sequence_number: 10, refresh_hint: 0, jwt_authorities: [] })] })
  t.same([replaced[0].bundle?.sequence_number, replaced[0].bundle?.refresh_hint, replaced[0].bundle?.jwt_authorities], [10, 0, []], 'without one the whole bundle is replaced')

  const changes = stand.logs().filter(l => l.msg === 'SPIRE server API: BatchCreateFederatedBundle')
  t.same((changes[0]?.bundles as Array<{ id: string, code: string }>).slice(0, 3), [{ id: 'a.example', code: 'OK' }, { id: 'a.example', code: 'ALREADY_EXISTS' }, { id: TD, code: 'INVALID_ARGUMENT' }],
    'each change is logged with its outcome')
  t.match(changes[0], { caller: { uid } }, 'and its caller')
})

void t.test('bundle service – CountBundles, GetFederatedBundle, ListFederatedBundles paged as SPIRE pages', async t => {
  const stand = await startSpireApiStand(t)
  t.same(await stand.call('CountBundles', {}, 'bundle'), { count: 1 }, 'our own bundle counts, as SPIRE\'s does')
  t.same(await stand.call('ListFederatedBundles', {}, 'bundle'), { bundles: [], next_page_token: '' })
  const names = ['c.example', 'a.example', 'b.example', 'd.example']
  await batch(stand, 'BatchSetFederatedBundle', { bundle: names.map(name => federated(name)) })
  t.same(await stand.call('CountBundles', {}, 'bundle'), { count: 5 })
  const all = await stand.call<{ bundles: BundleMessage[], next_page_token: string }>('ListFederatedBundles', { output_mask: {} }, 'bundle')
  t.same(all.bundles.map(b => b.trust_domain), [...names].sort())
  t.equal(all.next_page_token, '', 'page_size 0: everything, no token')
  t.same(all.bundles[0].x509_authorities, [], 'the output mask applies')

  const pages: string[][] = []
  const tokens: string[] = []
  let token = ''
  do {
    const page = await stand.call<{ bundles: BundleMessage[], next_page_token: string }>('ListFederatedBundles', { page_size: 2, page_token: token }, 'bundle')
    pages.push(page.bundles.map(b => b.trust_domain))
    tokens.push(page.next_page_token)
    token = page.next_page_token
  } while (token !== '')
  t.same(pages, [['a.example'], ['b.example', 'c.example'], ['d.example'], []],
    'our own bundle takes the first page\'s first place and is left out; the walk ends with an empty page')
  t.ok(tokens.slice(0, 3).every(token => token !== ''), 'a non-empty cut always carries a token')
  t.equal(tokens[3], '')

  const got = await stand.call<BundleMessage>('GetFederatedBundle', { trust_domain: 'spiffe://b.example' }, 'bundle')
  t.equal(got.trust_domain, 'b.example')
  t.equal(new X509Certificate(got.x509_authorities[0].asn1).subject.includes('b.example'), true)
  t.same(await stand.failure('GetFederatedBundle', { trust_domain: 'nope.example' }, 'bundle'), { code: CODE.NOT_FOUND, details: 'bundle not found' })
  t.same(await stand.failure('GetFederatedBundle', { trust_domain: TD }, 'bundle'), {
    code: CODE.INVALID_ARGUMENT, details: 'getting a federated bundle for the server\'s own trust domain is not allowed'
  })
  t.same(await stand.failure('GetFederatedBundle', { trust_domain: '' }, 'bundle'), { code: CODE.INVALID_ARGUMENT, details: 'trust domain argument is not valid: trust domain is missing' })
})

void t.test('bundle service – a bundle set over the API reaches a workload whose entry federates; delete modes', async t => {
  const stand = await startSpireApiStand(t)
  const [set] = await batch(stand, 'BatchSetFederatedBundle', { bundle: [federated('other.example')] })
  t.equal(set.status.code, CODE.OK)
  const { results } = await stand.call<{ results: Array<{ status: { code: number }, entry: { id: string } }> }>('BatchCreateEntry', {
    entries: [entry(stand, '/federating', { selectors: [{ type: 'unix', value: `uid:${uid}` }], federates_with: ['other.example'] })]
  })
  t.equal(results[0].status.code, CODE.OK)
  const client = new WorkloadClient(`unix://${stand.dir}/workload.sock`)
  t.teardown(() => client.close())
  const federatedBundles = async (): Promise<string[]> => [...(await client.fetchX509Svid()).federatedBundles.keys()]
  t.match(await federatedBundles(), [/other\.example/], 'the workload gets the bundle')

  const restrict = await stand.call<{ results: Array<{ status: { code: number, message: string }, trust_domain: string }> }>('BatchDeleteFederatedBundle',
    { trust_domains: ['other.example', 'nope.example', TD, ''] }, 'bundle')
  t.same(restrict.results, [
    { status: { code: CODE.FAILED_PRECONDITION, message: 'failed to delete federated bundle: datastore-sql: cannot delete bundle; federated with 1 registration entries' }, trust_domain: 'other.example' },
    { status: { code: CODE.NOT_FOUND, message: 'bundle not found' }, trust_domain: 'nope.example' },
    { status: { code: CODE.INVALID_ARGUMENT, message: 'removing the bundle for the server trust domain is not allowed' }, trust_domain: TD },
    { status: { code: CODE.INVALID_ARGUMENT, message: 'trust domain argument is not valid: trust domain is missing' }, trust_domain: '' }
  ], 'RESTRICT (the default) refuses while an entry federates with it')

  const dissociate = await stand.call<{ results: Array<{ status: { code: number } }> }>('BatchDeleteFederatedBundle', { trust_domains: ['other.example'], mode: 'DISSOCIATE' }, 'bundle')
  t.equal(dissociate.results[0].status.code, CODE.OK)
  t.same(stand.agent.store.getEntry(results[0].entry.id)?.federatesWith, [], 'DISSOCIATE: the entry no longer federates with it')
  t.same(await federatedBundles(), [], 'deleted: the workload no longer gets it')

  await batch(stand, 'BatchSetFederatedBundle', { bundle: [federated('other.example')] })
  await stand.call('BatchUpdateEntry', { entries: [entry(stand, '/federating', { id: results[0].entry.id, selectors: [{ type: 'unix', value: `uid:${uid}` }], federates_with: ['other.example'] })] })
  const deleted = await stand.call<{ results: Array<{ status: { code: number } }> }>('BatchDeleteFederatedBundle', { trust_domains: ['other.example'], mode: 'DELETE' }, 'bundle')
  t.equal(deleted.results[0].status.code, CODE.OK)
  t.equal(stand.agent.store.getEntry(results[0].entry.id), undefined, 'DELETE: the entries that federate with it are deleted too')
  t.same(await stand.call('CountBundles', {}, 'bundle'), { count: 1 })
  t.match(stand.logs().find(l => l.msg === 'SPIRE server API: BatchDeleteFederatedBundle'), { bundles: [{ id: 'other.example', code: 'FAILED_PRECONDITION' }] })
})
