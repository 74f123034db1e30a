import t from 'tap'
import type { EntryMessage } from '../../../agent/spire-api/messages'
import { CODE, entry, id, splitId, startSpireApiStand } from './fixtures/spire-api-stand'
import type { SpireApiStand } from './fixtures/spire-api-stand'

// ListEntries and CountEntries as SPIRE's server answers them: every filter field and match behavior, the output
// mask, and paging exactly as SPIRE pages (spire-compat.md §1.2).

interface Page { entries: EntryMessage[], next_page_token: string }

let stand: SpireApiStand
/** The entries below by name, created in this order (the order SPIRE pages in). */
const made = new Map<string, EntryMessage>()
const unix = (...values: string[]): Array<{ type: string, value: string }> => values.map(value => ({ type: 'unix', value }))

t.before(async () => {
  stand = await startSpireApiStand(t)
  for (const td of ['a.example', 'b.example', 'c.example']) {
    stand.agent.store.setFederatedBundle({ trustDomain: td, format: 'pem', bundle: stand.agent.ca.bundle().x509.toPem() })
  }
  const specs: Array<[string, Partial<EntryMessage>]> = [
    ['uid', { selectors: unix('uid:1') }],
    ['uid-gid', { selectors: unix('uid:1', 'gid:2') }],
    ['gid', { selectors: unix('gid:2') }],
    ['uid-gid-user', { selectors: unix('uid:1', 'gid:2', 'user:u'), hint: 'web' }],
    ['other', { selectors: unix('uid:9'), downstream: true, hint: 'web' }],
    ['fed-a', { federates_with: ['a.example'] }],
    ['fed-ab', { federates_with: ['a.example', 'b.example'] }],
    ['fed-abc', { federates_with: ['a.example', 'b.example', 'c.example'], downstream: true }],
    ['child', { parent_id: id('/uid'), selectors: unix('uid:1') }]
  ]
  const { results } = await stand.call<{ results: Array<{ entry: EntryMessage }> }>('BatchCreateEntry', {
    entries: specs.map(([name, fields]) => entry(stand, `/${name}`, fields))
  })
  specs.forEach(([name], i) => made.set(name, results[i].entry))
})

/** The names of the entries listed (page_size 0: all at once, so no token). */
async function names (filter: object): Promise<string[]> {
  const page = await stand.call<Page>('ListEntries', { filter })
  if (page.next_page_token !== '') throw new Error(`a token without paging: ${page.next_page_token}`)
  return page.entries.map(e => e.spiffe_id?.path.slice(1) ?? '')
}

async function count (filter: object): Promise<number> {
  return (await stand.call<{ count: number }>('CountEntries', { filter })).count
}

const ALL = ['uid', 'uid-gid', 'gid', 'uid-gid-user', 'other', 'fed-a', 'fed-ab', 'fed-abc', 'child']

void t.test('ListEntries – no filter: every entry, in creation order; CountEntries agrees', async t => {
  t.same(await names({}), ALL)
  t.equal(await count({}), ALL.length)
  t.same((await stand.call<Page>('ListEntries', {})).entries.length, ALL.length, 'no filter message at all')
})

void t.test('ListEntries – by_selectors with each match behavior (SPIRE\'s meaning of each)', async t => {
  const cases: Array<[string, string[], string[]]> = [
    ['MATCH_EXACT', ['uid:1', 'gid:2'], ['uid-gid']],
    ['MATCH_EXACT', ['uid:1'], ['uid', 'child']],
    ['MATCH_SUBSET', ['uid:1', 'gid:2'], ['uid', 'uid-gid', 'gid', 'child']],
    ['MATCH_SUPERSET', ['uid:1', 'gid:2'], ['uid-gid', 'uid-gid-user']],
    ['MATCH_ANY', ['uid:1', 'gid:2'], ['uid', 'uid-gid', 'gid', 'uid-gid-user', 'child']],
    ['MATCH_ANY', ['uid:404'], []]
  ]
  for (const [match, values, expected] of cases) {
    const filter = { by_selectors: { selectors: unix(...values), match } }
    t.same(await names(filter), expected, `${match} ${values.join(', ')}`)
    t.equal(await count(filter), expected.length, `CountEntries ${match} ${values.join(', ')}`)
  }
  t.same(await names({ by_selectors: { selectors: unix('uid:1') } }), ['uid', 'child'], 'the default (0) is MATCH_EXACT')
})

void t.test('ListEntries – by_federates_with with each match behavior; entries federating with nothing never match', async t => {
  const cases: Array<[string, string[], string[]]> = [
    ['MATCH_EXACT', ['a.example', 'b.example'], ['fed-ab']],
    ['MATCH_SUBSET', ['a.example', 'b.example'], ['fed-a', 'fed-ab']],
    ['MATCH_SUPERSET', ['a.example', 'b.example'], ['fed-ab', 'fed-abc']],
    ['MATCH_ANY', ['c.example', 'z.example'], ['fed-abc']],
    ['MATCH_SUPERSET', ['spiffe://a.example'], ['fed-a', 'fed-ab', 'fed-abc']]
  ]
  for (const [match, tds, expected] of cases) {
    const filter = { by_federates_with: { trust_domains: tds, match } }
    t.same(await names(filter), expected, `${match} ${tds.join(', ')}`)
    t.equal(await count(filter), expected.length)
  }
})

void t.test('ListEntries – by_spiffe_id, by_parent_id (this agent\'s ID included), by_hint, by_downstream, and together', async t => {
  const agentParent = splitId(stand.agent.store.agentId)
  t.same(await names({ by_spiffe_id: id('/gid') }), ['gid'])
  t.same(await names({ by_parent_id: id('/uid') }), ['child'])
  t.same(await names({ by_parent_id: agentParent }), ALL.filter(n => n !== 'child'), 'the entries parented on this agent')
  t.same(await names({ by_hint: { value: 'web' } }), ['uid-gid-user', 'other'])
  t.same(await names({ by_hint: { value: '' } }), ALL, 'an empty hint filters nothing, as in SPIRE')
  t.same(await names({ by_downstream: { value: true } }), ['other', 'fed-abc'])
  t.same(await names({ by_downstream: { value: false } }), ALL, 'downstream false filters nothing, as in SPIRE')
  t.same(await names({ by_hint: { value: 'web' }, by_downstream: { value: true } }), ['other'], 'set fields are ANDed')
  t.same(await names({ by_parent_id: agentParent, by_selectors: { selectors: unix('uid:1'), match: 'MATCH_SUPERSET' } }), ['uid', 'uid-gid', 'uid-gid-user'])
  t.equal(await count({ by_hint: { value: 'web' }, by_downstream: { value: true } }), 1)
})

void t.test('ListEntries and CountEntries – a malformed filter is INVALID_ARGUMENT in SPIRE\'s words', async t => {
  const cases: Array<[object, string]> = [
    [{ by_parent_id: id('/x', 'other.example') }, 'malformed parent ID filter: "spiffe://other.example/x" is not a member of trust domain "plant.example"'],
    [{ by_spiffe_id: id('/spire/agent/x') }, 'malformed SPIFFE ID filter: "spiffe://plant.example/spire/agent/x" is not a workload in trust domain "plant.example"; path is in the reserved namespace'],
    [{ by_selectors: { selectors: [] } }, 'malformed selectors filter: empty selector set'],
    [{ by_selectors: { selectors: [{ type: '', value: 'x' }] } }, 'malformed selectors filter: missing selector type'],
    [{ by_federates_with: { trust_domains: [] } }, 'malformed federates with filter: empty trust domain set'],
    [{ by_federates_with: { trust_domains: ['Bad'] } }, 'malformed federates with filter: trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores']
  ]
  for (const [filter, details] of cases) {
    t.same(await stand.failure('ListEntries', { filter }), { code: CODE.INVALID_ARGUMENT, details }, details)
    t.same(await stand.failure('CountEntries', { filter }), { code: CODE.INVALID_ARGUMENT, details }, `CountEntries: ${details}`)
  }
})

/** Every page of a walk: what SPIRE's clients do, until the token is empty. */
async function walk (request: object, pageSize: number): Promise<Page[]> {
  const pages: Page[] = []
  let token = ''
  do {
    const page = await stand.call<Page>('ListEntries', { ...request, page_size: pageSize, page_token: token })
    pages.push(page)
    token = page.next_page_token
  } while (token !== '' && pages.length < 100)
  return pages
}

void t.test('ListEntries – paging as SPIRE pages: every page but the last carries a token, the walk ends with an empty page', async t => {
  const pages = await walk({}, 4)
  t.same(pages.map(p => p.entries.length), [4, 4, 1, 0], '9 entries in pages of 4: the last data page still has a token, then an empty one')
  t.ok(pages.slice(0, 3).every(p => /^[0-9]+$/.test(p.next_page_token)), 'tokens are decimal ranks')
  t.equal(pages[3].next_page_token, '')
  t.same(pages.flatMap(p => p.entries.map(e => e.id)), ALL.map(n => made.get(n)?.id), 'each entry once, in creation order')
  t.same((await walk({}, 9)).map(p => p.entries.length), [9, 0], 'a full page exactly: still one more, empty')
  t.same((await walk({}, 0)).map(p => p.entries.length), [9], 'page_size 0: everything at once, no token')
  t.same((await walk({}, -3)).map(p => p.entries.length), [9], 'a negative page_size too')
  t.same((await walk({ filter: { by_hint: { value: 'nothing has this' } } }, 5)).map(p => p.entries.length), [0], 'nothing matches: one empty page')
})

void t.test('ListEntries – with EXACT and SUBSET selector matches a page can come out smaller, never empty before the end', async t => {
  // SUBSET {uid:1} finds entries having uid:1 (uid, uid-gid, uid-gid-user, child), then keeps those whose
  // selectors are all among {uid:1}: SPIRE cuts pages from the first list, then filters each.
  const pages = await walk({ filter: { by_selectors: { selectors: unix('uid:1'), match: 'MATCH_SUBSET' } } }, 2)
  t.same(pages.map(p => p.entries.map(e => e.spiffe_id?.path)), [['/uid'], ['/child'], []],
    'the page [uid-gid-user, child] keeps child; the page [uid, uid-gid] keeps uid; the walk ends with an empty page')
  const skipping = await walk({ filter: { by_selectors: { selectors: unix('uid:1'), match: 'MATCH_EXACT' } } }, 1)
  t.same(skipping.map(p => p.entries.map(e => e.spiffe_id?.path)), [['/uid'], ['/child'], []], 'pages filtered to nothing are skipped, as SPIRE re-queries')
})

void t.test('ListEntries – a malformed token fails as SPIRE\'s does', async t => {
  for (const token of ['abc', '-1', '4294967296']) {
    t.same(await stand.failure('ListEntries', { page_size: 2, page_token: token }), {
      code: CODE.INTERNAL, details: `failed to list entries: datastore-sql: rpc error: code = InvalidArgument desc = could not parse token '${token}'`
    }, token)
  }
  t.same((await stand.call<Page>('ListEntries', { page_size: 0, page_token: 'abc' })).entries.length, 9, 'without paging the token is not read')
})

void t.test('ListEntries – the output mask keeps the ID and the masked fields, zeroes the rest', async t => {
  const page = await stand.call<Page>('ListEntries', { filter: { by_spiffe_id: id('/other') }, output_mask: { downstream: true, hint: true } })
  t.same(page.entries, [{
    id: made.get('other')?.id, spiffe_id: null, parent_id: null, selectors: [], x509_svid_ttl: 0, federates_with: [], admin: false,
    downstream: true, expires_at: 0, dns_names: [], revision_number: 0, store_svid: false, jwt_svid_ttl: 0, hint: 'web', created_at: 0
  }])
  const whole = await stand.call<Page>('ListEntries', { filter: { by_spiffe_id: id('/other') } })
  t.same(whole.entries, [made.get('other')], 'without a mask, the whole entry')
})
