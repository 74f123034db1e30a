import t from 'tap'
import { rawCall } from './fixtures/spire-api-stand'
import { startTrustDomainStand, TD } from './fixtures/trust-domain-stand'
import type { FederationRelationshipMessage as Relationship, StatusMessage } from '../../../agent/spire-api/messages'

// SPIRE's TrustDomain service on the agent's SPIRE server socket (spire.api.server.trustdomain.v1), called with
// grpc-js over the real socket: federation relationships made, listed, paged, shown, updated with masks, deleted
// and refreshed as SPIRE's server does it, with its codes and words, per item in batches; the relationships of the
// agent's config file are shown and refused to changes.

const CODE = { OK: 0, INVALID_ARGUMENT: 3, NOT_FOUND: 5, FAILED_PRECONDITION: 9, UNIMPLEMENTED: 12, INTERNAL: 13 } as const
const OK = { code: CODE.OK, message: 'OK' }

interface Results { results: Array<{ status: StatusMessage, federation_relationship: Relationship | null }> }
interface Listed { federation_relationships: Relationship[], next_page_token: string }

const web = (name: string, fields: Partial<Relationship> = {}): Partial<Relationship> =>
  ({ trust_domain: name, bundle_endpoint_url: `https://${name}:8443/bundle`, https_web: {}, ...fields })
const spiffe = (name: string, fields: Partial<Relationship> = {}): Partial<Relationship> =>
  ({ trust_domain: name, bundle_endpoint_url: `https://${name}/`, https_spiffe: { endpoint_spiffe_id: `spiffe://${name}/spire/server` }, ...fields })

void t.test('trust domain service – BatchCreateFederationRelationship: each item created or refused in SPIRE\'s words, in request order', async t => {
  const stand = await startTrustDomainStand(t)
  const items = [
    web('web.example'),
    spiffe('spiffe.example', { trust_domain_bundle: stand.bundle('spiffe.example') }),
    web('Bad.Example'),
    web(TD),
    web('http.example', { bundle_endpoint_url: 'http://http.example/' }),
    web('nohost.example', { bundle_endpoint_url: 'https:///bundle' }),
    web('user.example', { bundle_endpoint_url: 'https://me@user.example/' }),
    { trust_domain: 'noprofile.example', bundle_endpoint_url: 'https://noprofile.example/' },
    spiffe('badid.example', { https_spiffe: { endpoint_spiffe_id: 'badid.example/spire/server' } }),
    spiffe('mismatch.example', { trust_domain_bundle: stand.bundle('other.example') }),
    spiffe('badcert.example', { trust_domain_bundle: { ...stand.bundle('badcert.example'), x509_authorities: [{ asn1: Buffer.from('nope'), tainted: false }] } }),
    spiffe('empty.example', { trust_domain_bundle: { ...stand.bundle('empty.example'), x509_authorities: [] } }),
    web('web.example')
  ]
  const { results } = await stand.call<Results>('BatchCreateFederationRelationship', { federation_relationships: items })
  const converting = 'failed to convert federation relationship: '
  t.same(results.map(r => r.status), [
    OK,
    OK,
    { code: CODE.INVALID_ARGUMENT, message: `${converting}failed to parse trust domain: trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores` },
    { code: CODE.INVALID_ARGUMENT, message: 'unable to create federation relationship for server trust domain' },
    { code: CODE.INVALID_ARGUMENT, message: `${converting}bundle endpoint URL must use the https scheme` },
    { code: CODE.INVALID_ARGUMENT, message: `${converting}bundle endpoint URL must specify the host` },
    { code: CODE.INVALID_ARGUMENT, message: `${converting}bundle endpoint URL must not contain user info` },
    { code: CODE.INVALID_ARGUMENT, message: `${converting}unsupported bundle endpoint profile type: <nil>` },
    { code: CODE.INVALID_ARGUMENT, message: `${converting}failed to parse endpoint SPIFFE ID: scheme is missing or invalid` },
    { code: CODE.INVALID_ARGUMENT, message: `${converting}trust domain bundle ("other.example") must match the trust domain of the federation relationship ("mismatch.example")` },
    { code: CODE.INVALID_ARGUMENT, message: results[10].status.message },
    { code: CODE.INVALID_ARGUMENT, message: `${converting}failed to parse bundle: the bundle for empty.example holds no X.509 authority and no JWT key (keys of another "use" are ignored): it would trust nothing` },
    { code: CODE.INTERNAL, message: 'failed to create federation relationship: datastore-sql: UNIQUE constraint failed: federated_trust_domains.trust_domain' }
  ])
  t.match(results[10].status.message, /^failed to convert federation relationship: failed to parse bundle: unable to parse X\.509 authority: /, 'a certificate that does not parse')
  t.same(results[0].federation_relationship, { trust_domain: 'web.example', bundle_endpoint_url: 'https://web.example:8443/bundle', https_web: {}, bundle_endpoint_profile: 'https_web', trust_domain_bundle: null },
    'created as sent; no bundle was sent, none shown')
  t.match(results[1].federation_relationship, { https_spiffe: { endpoint_spiffe_id: 'spiffe://spiffe.example/spire/server' }, trust_domain_bundle: { trust_domain: 'spiffe.example', x509_authorities: [{ asn1: stand.foreignCa }] } })
  for (const i of [2, 3, 12]) t.equal(results[i].federation_relationship, null, `a refused item (${i}) comes back without a relationship`)
  t.same(stand.store.relationships.list().map(r => r.trustDomain.name), ['spiffe.example', 'web.example'], 'only the two created are stored')
  t.same(stand.store.findFederatedBundle('spiffe.example')?.bundle.x509.authorities.map(c => c.raw), [stand.foreignCa], 'the bundle sent is the federated bundle')
  t.equal(stand.store.findFederatedBundle('mismatch.example'), undefined, 'a refused item stores no bundle')
  t.match(stand.logs().find(l => l.msg === 'SPIRE server API: BatchCreateFederationRelationship'), { relationships: [{ id: 'web.example', code: 'OK' }, { id: 'spiffe.example', code: 'OK' }, { id: 'Bad.Example', code: 'INVALID_ARGUMENT' }] },
    'the batch is logged with each item\'s outcome')

  const masked = await stand.call<Results>('BatchCreateFederationRelationship', { federation_relationships: [web('masked.example')], output_mask: { bundle_endpoint_url: true } })
  t.same(masked.results[0].federation_relationship, { trust_domain: 'masked.example', bundle_endpoint_url: 'https://masked.example:8443/bundle', trust_domain_bundle: null },
    'the output mask: the profile left out')
})

void t.test('trust domain service – List pages as SPIRE does, masks, and shows the config file\'s relationships; Get', async t => {
  const stand = await startTrustDomainStand(t)
  await stand.call('BatchCreateFederationRelationship', { federation_relationships: ['c.example', 'a.example', 'b.example'].map(name => web(name)) })
  stand.store.relationships.create({ trustDomain: 'config.example', bundleEndpointUrl: 'https://config.example/', profile: 'https_spiffe', endpointSpiffeId: 'spiffe://config.example/spire/server' },
    { source: 'config', bundle: { format: 'pem', bundle: `-----BEGIN CERTIFICATE-----\n${stand.foreignCa.toString('base64')}\n-----END CERTIFICATE-----\n` } })

  const all = await stand.call<Listed>('ListFederationRelationships', {})
  t.same(all.federation_relationships.map(r => r.trust_domain), ['a.example', 'b.example', 'c.example', 'config.example'], 'page_size 0: all at once, the config file\'s too')
  t.equal(all.next_page_token, '')
  t.same(all.federation_relationships[3].trust_domain_bundle?.x509_authorities.map(a => a.asn1), [stand.foreignCa], 'with the bundle held for it')

  const pages: string[][] = []
  let token = ''
  do {
    const page = await stand.call<Listed>('ListFederationRelationships', { page_size: 3, page_token: token, output_mask: { bundle_endpoint_profile: true } })
    pages.push(page.federation_relationships.map(r => r.trust_domain))
    if (page.federation_relationships.length > 0) t.match(page.federation_relationships[0], { bundle_endpoint_url: '', trust_domain_bundle: null }, 'masked')
    token = page.next_page_token
    t.equal(token === '', page.federation_relationships.length === 0, 'a non-empty page always carries a token')
  } while (token !== '')
  t.same(pages, [['a.example', 'b.example', 'c.example'], ['config.example'], []], 'the walk ends with an empty page')

  const shown = await stand.call<Relationship>('GetFederationRelationship', { trust_domain: 'config.example' })
  t.match(shown, { trust_domain: 'config.example', bundle_endpoint_url: 'https://config.example/', https_spiffe: { endpoint_spiffe_id: 'spiffe://config.example/spire/server' } })
  t.same(await stand.call('GetFederationRelationship', { trust_domain: 'spiffe://a.example', output_mask: {} }), { trust_domain: 'a.example', bundle_endpoint_url: '', trust_domain_bundle: null },
    'by a trust domain ID; an empty mask leaves the trust domain only')
  t.same(await stand.failure('GetFederationRelationship', { trust_domain: 'nowhere.example' }), { code: CODE.NOT_FOUND, details: 'federation relationship does not exist' })
  t.same(await stand.failure('GetFederationRelationship', { trust_domain: '' }), { code: CODE.INVALID_ARGUMENT, details: 'failed to parse trust domain: trust domain is missing' })
})

void t.test('trust domain service – BatchUpdateFederationRelationship: no mask replaces all, a mask only its fields; refused per item', async t => {
  const stand = await startTrustDomainStand(t)
  await stand.call('BatchCreateFederationRelationship', { federation_relationships: [spiffe('a.example'), web('b.example')] })
  stand.store.relationships.create({ trustDomain: 'config.example', bundleEndpointUrl: 'https://config.example/', profile: 'https_web' }, { source: 'config' })
  const update = async (items: Array<Partial<Relationship>>, masks: object = {}): Promise<Results['results']> =>
    (await stand.call<Results>('BatchUpdateFederationRelationship', { federation_relationships: items, ...masks })).results

  const [replaced] = await update([web('a.example', { bundle_endpoint_url: 'https://a.example/v2' })])
  t.same(replaced.status, OK)
  t.same(replaced.federation_relationship, { trust_domain: 'a.example', bundle_endpoint_url: 'https://a.example/v2', https_web: {}, bundle_endpoint_profile: 'https_web', trust_domain_bundle: null },
    'without an input mask: URL and profile replaced')

  const [urlOnly] = await update([spiffe('b.example', { bundle_endpoint_url: 'https://b.example/v3', trust_domain_bundle: stand.bundle('b.example') })], { input_mask: { bundle_endpoint_url: true } })
  t.match(urlOnly.federation_relationship, { bundle_endpoint_url: 'https://b.example/v3', https_web: {}, trust_domain_bundle: null }, 'with one: only the URL; the profile and the bundle sent are not applied')
  t.equal(stand.store.findFederatedBundle('b.example'), undefined)

  const [bundled] = await update([spiffe('b.example', { trust_domain_bundle: stand.bundle('b.example') })], { input_mask: { trust_domain_bundle: true }, output_mask: { trust_domain_bundle: true } })
  t.same(bundled.federation_relationship, { trust_domain: 'b.example', bundle_endpoint_url: '', trust_domain_bundle: { ...stand.bundle('b.example'), x509_authorities: [{ asn1: stand.foreignCa, tainted: false }] } },
    'the bundle set through the mask, shown through the output mask')
  t.equal(stand.store.relationships.get('b.example').profile.kind, 'https_web', 'the profile stays')

  const refused = await update([
    web('nowhere.example'),
    web('config.example', { bundle_endpoint_url: 'https://config.example/changed' }),
    web('a.example', { bundle_endpoint_url: 'ftp://a.example/' }),
    spiffe('a.example', { trust_domain_bundle: stand.bundle('b.example') })
  ], { input_mask: { bundle_endpoint_profile: true } })
  t.same(refused.map(r => r.status), [
    { code: CODE.INTERNAL, message: 'failed to update federation relationship: unable to fetch federation relationship: record not found' },
    { code: CODE.FAILED_PRECONDITION, message: 'failed to update federation relationship: the federation relationship with config.example is defined in the agent\'s config file: it is changed there (federation.relationships), then the agent restarted' },
    { code: CODE.INVALID_ARGUMENT, message: 'failed to convert federation relationship: bundle endpoint URL must use the https scheme' },
    { code: CODE.INVALID_ARGUMENT, message: 'failed to convert federation relationship: trust domain bundle ("b.example") must match the trust domain of the federation relationship ("a.example")' }
  ], 'every field is checked whatever the input mask says, as SPIRE does')
  t.equal(stand.store.relationships.get('config.example').bundleEndpointUrl, 'https://config.example/', 'the config file\'s relationship is unchanged')
})

void t.test('trust domain service – BatchDeleteFederationRelationship: deleted with the bundle, or refused per item', async t => {
  const stand = await startTrustDomainStand(t)
  await stand.call('BatchCreateFederationRelationship', { federation_relationships: [spiffe('a.example', { trust_domain_bundle: stand.bundle('a.example') })] })
  stand.store.relationships.create({ trustDomain: 'config.example', bundleEndpointUrl: 'https://config.example/', profile: 'https_web' }, { source: 'config' })
  const { results } = await stand.call<{ results: Array<{ status: StatusMessage, trust_domain: string }> }>('BatchDeleteFederationRelationship',
    { trust_domains: ['spiffe://a.example', '', 'Bad', 'a.example', 'config.example'] })
  t.same(results, [
    { status: OK, trust_domain: 'a.example' },
    { status: { code: CODE.INVALID_ARGUMENT, message: 'missing trust domain' }, trust_domain: '' },
    { status: { code: CODE.INVALID_ARGUMENT, message: 'failed to parse trust domain: trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores' }, trust_domain: 'Bad' },
    { status: { code: CODE.NOT_FOUND, message: 'federation relationship not found' }, trust_domain: 'a.example' },
    { status: { code: CODE.FAILED_PRECONDITION, message: 'failed to delete federation relationship: the federation relationship with config.example is defined in the agent\'s config file: it is deleted there (federation.relationships), then the agent restarted' }, trust_domain: 'config.example' }
  ])
  t.equal(stand.store.findFederatedBundle('a.example'), undefined, 'the trust domain\'s bundle went with it (SPIRE keeps it)')
  t.same(stand.store.relationships.list().map(r => r.trustDomain.name), ['config.example'])
})

void t.test('trust domain service – RefreshBundle asks the federation and answers when the fetch is done', async t => {
  const stand = await startTrustDomainStand(t)
  await stand.call('BatchCreateFederationRelationship', { federation_relationships: [web('a.example'), web('down.example')] })
  t.same(await stand.call('RefreshBundle', { trust_domain: 'spiffe://a.example' }), {})
  t.same(stand.refreshed, ['a.example'], 'the federation was asked by name')
  stand.failing.set('down.example', new Error('failed to fetch federated bundle from endpoint: connect ECONNREFUSED 127.0.0.1:8443'))
  t.same(await stand.failure('RefreshBundle', { trust_domain: 'down.example' }),
    { code: CODE.INTERNAL, details: 'failed to refresh bundle: failed to fetch federated bundle from endpoint: connect ECONNREFUSED 127.0.0.1:8443' }, 'a failed fetch: INTERNAL with its reason')
  t.same(await stand.failure('RefreshBundle', { trust_domain: 'nowhere.example' }), { code: CODE.NOT_FOUND, details: 'no relationship with trust domain "nowhere.example"' })
  t.same(await stand.failure('RefreshBundle', { trust_domain: 'https://a.example' }), { code: CODE.INVALID_ARGUMENT, details: 'failed to parse trust domain: scheme is missing or invalid' })
  t.same(stand.refreshed, ['a.example', 'down.example'], 'nothing asked for what is refused first')

  const plain = await stand.startWithoutFederation()
  t.match(await stand.failure('RefreshBundle', { trust_domain: 'a.example' }, plain), { code: CODE.UNIMPLEMENTED, details: /RefreshBundle is not implemented: this agent fetches no federated bundles/ },
    'an API without the agent\'s federation says so')
})

void t.test('trust domain service – served on the socket with its health status', async t => {
  const stand = await startTrustDomainStand(t)
  const method = '/spire.api.server.trustdomain.v1.TrustDomain/ListFederationRelationships'
  t.equal((await rawCall(stand.socket, method)).code, CODE.OK, method)
  // HealthCheckRequest{service = 1}; HealthCheckResponse{status = 1: SERVING (1)}.
  const service = Buffer.from('spire.api.server.trustdomain.v1.TrustDomain')
  const check = Buffer.concat([Buffer.from([0x0a, service.length]), service])
  t.same((await rawCall(stand.socket, '/grpc.health.v1.Health/Check', check)).response, Buffer.from([0x08, 0x01]), 'health: SERVING')
})
