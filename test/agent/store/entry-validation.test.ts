import t from 'tap'
import { thrown } from '../../helpers/errors'
import { openStore, tmpDataDir } from './fixtures/store'

const store = openStore(t, tmpDataDir(t))
const ID = 'spiffe://example.org/app'
const SELECTORS = ['unix:uid:1001']

/** Each row: what the entry breaks, the fields that break it (over a valid entry), and the message's reason. */
const INVALID: Array<[string, Record<string, unknown>, RegExp]> = [
  ['no spiffeId', { spiffeId: undefined }, /spiffeId must be a SPIFFE ID string/],
  ['spiffeId not a string', { spiffeId: 42 }, /spiffeId must be a SPIFFE ID string/],
  ['empty spiffeId', { spiffeId: '' }, /spiffeId: .*cannot be empty/],
  ['wrong scheme', { spiffeId: 'https://example.org/app' }, /spiffeId: .*scheme is missing or invalid/],
  ['uppercase scheme', { spiffeId: 'SPIFFE://example.org/app' }, /scheme is missing or invalid/],
  ['uppercase trust domain', { spiffeId: 'spiffe://Example.org/app' }, /trust domains must be lowercase/],
  ['port', { spiffeId: 'spiffe://example.org:443/app' }, /a port is not allowed/],
  ['userinfo', { spiffeId: 'spiffe://user@example.org/app' }, /userinfo is not allowed/],
  ['empty segment', { spiffeId: 'spiffe://example.org/a//b' }, /path cannot contain empty segments/],
  ['dot segment', { spiffeId: 'spiffe://example.org/a/../b' }, /path cannot contain dot segments/],
  ['trailing slash', { spiffeId: 'spiffe://example.org/app/' }, /path cannot have a trailing slash/],
  ['percent-encoding', { spiffeId: 'spiffe://example.org/a%20b' }, /percent-encoding is not allowed/],
  ['query', { spiffeId: 'spiffe://example.org/app?x=1' }, /a query is not allowed/],
  ['no path', { spiffeId: 'spiffe://example.org' }, /spiffeId must have a path: "spiffe:\/\/example.org" names the trust domain itself/],
  ['other trust domain', { spiffeId: 'spiffe://other.org/app' }, /spiffeId must be in this agent's trust domain "example.org", not "other.org"/],
  ['bad parentId', { parentId: 'spiffe://example.org/a//b' }, /parentId: .*empty segments/],
  ['parentId not a string', { parentId: 7 }, /parentId must be a SPIFFE ID string/],
  ['no selectors', { selectors: [] }, /selectors must list at least one selector/],
  ['selectors missing', { selectors: undefined }, /selectors must list at least one selector/],
  ['selectors not a list', { selectors: 'unix:uid:1' }, /selectors must list at least one selector/],
  ['x509SvidTtl 0', { x509SvidTtl: 0 }, /x509SvidTtl must be a positive whole number of seconds, at most 31536000 \(1 year\); got 0/],
  ['x509SvidTtl negative', { x509SvidTtl: -60 }, /x509SvidTtl must be a positive .*got -60/],
  ['x509SvidTtl NaN', { x509SvidTtl: NaN }, /got NaN/],
  ['x509SvidTtl Infinity', { x509SvidTtl: Infinity }, /got Infinity/],
  ['x509SvidTtl fractional', { x509SvidTtl: 1.5 }, /got 1.5/],
  ['x509SvidTtl over a year', { x509SvidTtl: 365 * 86400 + 1 }, /at most 31536000/],
  ['x509SvidTtl as text', { x509SvidTtl: '3600' }, /x509SvidTtl must be .*got "3600"/],
  ['jwtSvidTtl 0', { jwtSvidTtl: 0 }, /jwtSvidTtl must be a positive whole number/],
  ['jwtSvidTtl negative', { jwtSvidTtl: -1 }, /jwtSvidTtl must be a positive/],
  ['dnsNames not a list', { dnsNames: 'a.example.org' }, /dnsNames must be a list/],
  ['dnsNames with a number', { dnsNames: [1] }, /dnsNames must list strings; got 1/],
  ['empty DNS name', { dnsNames: [''] }, /dnsNames: "" is not a DNS name/],
  ['DNS label with underscore', { dnsNames: ['my_app.example.org'] }, /is not a DNS name: labels of 1–63 letters/],
  ['DNS label with leading hyphen', { dnsNames: ['-app.example.org'] }, /not a DNS name/],
  ['DNS label with trailing hyphen', { dnsNames: ['app-.example.org'] }, /not a DNS name/],
  ['DNS empty label', { dnsNames: ['a..example.org'] }, /not a DNS name/],
  ['DNS trailing dot', { dnsNames: ['example.org.'] }, /not a DNS name/],
  ['DNS label of 64', { dnsNames: [`${'a'.repeat(64)}.org`] }, /not a DNS name/],
  ['DNS name over 253', { dnsNames: [Array(64).fill('abc').join('.')] }, /at most 253 characters/],
  ['DNS wildcard inside', { dnsNames: ['a.*.example.org'] }, /not a DNS name/],
  ['DNS bare wildcard', { dnsNames: ['*'] }, /not a DNS name/],
  ['DNS partial wildcard', { dnsNames: ['app*.example.org'] }, /not a DNS name/],
  ['DNS non-ASCII', { dnsNames: ['bücher.example'] }, /not a DNS name/],
  ['DNS Kelvin sign (lowercases to k)', { dnsNames: ['\u212a.example'] }, /not a DNS name/],
  ['DNS with a port', { dnsNames: ['example.org:443'] }, /not a DNS name/],
  ['hint too long', { hint: 'h'.repeat(1025) }, /hint must be a string of at most 1024 characters/],
  ['hint not a string', { hint: 5 }, /hint must be a string/],
  ['admin not a boolean', { admin: 'yes' }, /admin must be true or false; got "yes"/],
  ['downstream not a boolean', { downstream: 1 }, /downstream must be true or false; got 1/],
  ['federatesWith not a list', { federatesWith: 'other.org' }, /federatesWith must be a list/],
  ['federatesWith bad name', { federatesWith: ['Other.org'] }, /federatesWith: invalid trust domain "Other.org": .*lowercase/],
  ['federatesWith with a port', { federatesWith: ['other.org:443'] }, /federatesWith: .*a port is not allowed/],
  ['federatesWith empty', { federatesWith: [''] }, /federatesWith: .*trust domain is missing/],
  ['federatesWith own trust domain', { federatesWith: ['example.org'] }, /federatesWith must name other trust domains, not the agent's own "example.org"/],
  ['expiresAt negative', { expiresAt: -1 }, /expiresAt must be a whole number of unix seconds/],
  ['expiresAt fractional', { expiresAt: 1.5 }, /expiresAt must be a whole number/],
  ['expiresAt in milliseconds', { expiresAt: Date.now() }, /expiresAt must be a whole number/],
  ['expiresAt as a date string', { expiresAt: '2030-01-01' }, /got "2030-01-01"/],
  ['unknown field', { ttl: 60 }, /unknown field "ttl"; known fields: spiffeId, parentId, selectors/],
  ['inherited name as a field', { toString: 'x' }, /unknown field "toString"/]
]

void t.test('entry validation – each broken rule is ERR_ENTRY_INVALID naming the field and the rule', async t => {
  for (const [name, fields, reason] of INVALID) {
    const err = thrown(() => store.createEntry({ spiffeId: ID, selectors: SELECTORS, ...fields }))
    t.equal(err.code, 'ERR_ENTRY_INVALID', name)
    t.match(err.message, reason, name)
  }
  t.equal(store.listEntries().length, 0, 'nothing invalid was stored')
  t.equal(store.revision, 0, 'and the revision did not move')
})

void t.test('entry validation – the same rules apply to patches, and a failed update changes nothing', async t => {
  const entry = store.createEntry({ spiffeId: 'spiffe://example.org/patched', selectors: SELECTORS })
  for (const [name, fields, reason] of INVALID.filter(([, fields]) => Object.values(fields)[0] !== undefined)) {
    const err = thrown(() => store.updateEntry(entry.id, fields))
    t.equal(err.code, 'ERR_ENTRY_INVALID', name)
    t.match(err.message, reason, name)
  }
  t.match(thrown(() => store.updateEntry(entry.id, null as never)), { code: 'ERR_ENTRY_INVALID', message: /a patch must be an object/ })
  t.same(store.getEntry(entry.id), entry, 'the entry is as it was')
})

void t.test('entry validation – entries must be objects and selectors valid', async t => {
  for (const input of [null, undefined, 'spiffe://example.org/app', [ID]]) {
    t.match(thrown(() => store.createEntry(input as never)), { code: 'ERR_ENTRY_INVALID', message: /an entry must be an object/ })
  }
  t.match(thrown(() => store.createEntry({ spiffeId: ID, selectors: ['unix:uid:1001', 'k8s:ns:x'] })),
    { code: 'ERR_SELECTOR_INVALID', message: /unknown selector type "k8s"/ })
})

void t.test('entry validation – accepted input is stored in canonical form', async t => {
  const entry = store.createEntry({
    spiffeId: 'spiffe://example.org/canonical',
    selectors: ['unix:uid:1001', 'unix:gid:50', 'unix:uid:1001'],
    dnsNames: ['API.Example.org', '*.svc.example.org', 'api.example.org', `${'a'.repeat(63)}.org`],
    federatesWith: ['z.org', 'spiffe://a.org', 'z.org'],
    x509SvidTtl: 365 * 86400,
    jwtSvidTtl: 1,
    hint: 'h'.repeat(1024),
    expiresAt: 0
  })
  t.same(entry.selectors, [{ type: 'unix', value: 'gid:50' }, { type: 'unix', value: 'uid:1001' }])
  t.same(entry.dnsNames, ['api.example.org', '*.svc.example.org', `${'a'.repeat(63)}.org`], 'lowercased, de-duplicated, in order')
  t.same(entry.federatesWith, ['a.org', 'z.org'], 'trust domain names, de-duplicated and sorted')
  t.equal(entry.x509SvidTtl, 365 * 86400)
  t.equal(entry.expiresAt, 0)
})
