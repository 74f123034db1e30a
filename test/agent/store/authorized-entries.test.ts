import t from 'tap'
import Database from 'better-sqlite3'
import type { RegistrationEntry, RegistrationStore, Selector } from '../../../agent/store'
import { ENTRY_SQL } from '../../../agent/store/entry-table'
import { MIGRATIONS, applyMigrations } from '../../../agent/store/schema'
import { manualClock, openStore, tmpDataDir } from './fixtures/store'

// The entries an attested agent may fetch, by SPIRE's rule (pkg/server/authorizedentries/cache.go): parented on the
// agent, on a node alias whose selectors are all among the agent's, and recursively on any entry already included.

const TD = 'spiffe://example.org'
const AGENT = `${TD}/spire/agent/x509pop/aa01`
const OTHER_AGENT = `${TD}/spire/agent/x509pop/bb02`
const SERVER = `${TD}/spire/server`
const SN1 = 'x509pop:subject:cn:SN-1'
const CA = 'x509pop:ca:fingerprint:f00d'
/** Node selectors from their text (`x509pop:…`), as the fleet role has them. */
const node = (...texts: string[]): Selector[] => texts.map(text => ({ type: 'x509pop', value: text.slice('x509pop:'.length) }))
const NODE = node(SN1, CA)

interface Made { (path: string, parentId: string | null, options?: { selectors?: string[], expiresAt?: number }): RegistrationEntry }

/** Registers `${TD}${path}` under a parent (any selectors SPIRE accepts; unix:uid:1 when none are given). */
function registrar (store: RegistrationStore): Made {
  return (path, parentId, { selectors = ['unix:uid:1'], expiresAt } = {}) =>
    store.createEntry({ spiffeId: `${TD}${path}`, parentId, selectors, expiresAt }, { selectorSyntax: 'spire' })
}

const paths = (entries: readonly RegistrationEntry[]): string[] => entries.map(entry => entry.spiffeId.slice(TD.length))

void t.test('authorized entries – those parented on the agent, in creation order; not another agent\'s, nor parentless ones, nor this node\'s', async t => {
  const store = openStore(t, tmpDataDir(t))
  const make = registrar(store)
  make('/b', AGENT)
  make('/a', AGENT, { selectors: ['k8s:ns:a'] })
  make('/other', OTHER_AGENT)
  make('/none', null)
  make('/own', store.agentId)
  make('/c', AGENT, { selectors: ['unix:uid:2'] })
  t.same(paths(store.entriesAuthorizedTo(AGENT, NODE)), ['/b', '/a', '/c'], 'in creation order, whatever their IDs')
  t.same(paths(store.entriesAuthorizedTo(OTHER_AGENT, NODE)), ['/other'])
  t.same(store.entriesAuthorizedTo(`${TD}/spire/agent/x509pop/unknown`, NODE), [])
  t.equal(store.serverId, SERVER)
})

void t.test('authorized entries – a node alias (parented on the server) counts when all its selectors are among the agent\'s', async t => {
  const store = openStore(t, tmpDataDir(t))
  const make = registrar(store)
  make('/group/sn-1', SERVER, { selectors: [SN1] })
  make('/group/sn-1-ca', SERVER, { selectors: [SN1, CA] })
  make('/group/berlin', SERVER, { selectors: [SN1, 'x509pop:san:site:berlin'] })
  make('/not-alias', `${TD}/elsewhere`, { selectors: [SN1] })
  make('/app-1', `${TD}/group/sn-1`)
  make('/app-2', `${TD}/group/sn-1-ca`)
  make('/app-3', `${TD}/group/berlin`)
  make('/app-4', `${TD}/not-alias`)
  t.same(paths(store.entriesAuthorizedTo(AGENT, NODE)), ['/app-1', '/app-2'], 'through both aliases the agent\'s selectors cover; never an alias itself')
  t.same(paths(store.entriesAuthorizedTo(AGENT, node(SN1))), ['/app-1'], 'not through an alias one of whose selectors the agent lacks')
  t.same(paths(store.entriesAuthorizedTo(AGENT, [...NODE, ...node('x509pop:san:site:berlin'), { type: 'unix', value: 'uid:1' }])), ['/app-1', '/app-2', '/app-3'],
    'more selectors than an alias needs is fine')
  t.same(paths(store.entriesAuthorizedTo(AGENT, node(SN1, SN1))), ['/app-1'], 'a selector given twice counts once')
  t.same(paths(store.entriesAuthorizedTo(AGENT, node(CA))), [])
  t.same(store.entriesAuthorizedTo(AGENT, []), [], 'no selectors, no alias')
  t.same(store.entriesAuthorizedTo(SERVER, NODE).map(entry => entry.parentId).filter(parent => parent === SERVER), [],
    'the server\'s ID is never crawled, so alias entries are never authorized themselves')
})

void t.test('authorized entries – descendants, several levels deep, under the agent and under an alias', async t => {
  const store = openStore(t, tmpDataDir(t))
  const make = registrar(store)
  make('/l1', AGENT)
  make('/alias', SERVER, { selectors: [CA] })
  make('/l2', `${TD}/l1`)
  make('/m1', `${TD}/alias`)
  make('/l3', `${TD}/l2`)
  make('/m2', `${TD}/m1`)
  make('/l4', `${TD}/l3`)
  make('/foreign', OTHER_AGENT)
  make('/foreign-child', `${TD}/foreign`)
  t.same(paths(store.entriesAuthorizedTo(AGENT, NODE)), ['/l1', '/l2', '/m1', '/l3', '/m2', '/l4'])
  t.same(paths(store.entriesAuthorizedTo(AGENT, [])), ['/l1', '/l2', '/l3', '/l4'], 'without the alias, only the agent\'s own line')
})

void t.test('authorized entries – a cycle of parents ends, each entry once', async t => {
  const store = openStore(t, tmpDataDir(t))
  const make = registrar(store)
  make('/y', AGENT)
  make('/x', `${TD}/y`)
  make('/y', `${TD}/x`)
  make('/z', `${TD}/z`)
  make('/p', `${TD}/q`)
  make('/q', `${TD}/p`)
  const found = store.entriesAuthorizedTo(AGENT, NODE)
  t.same(found.map(entry => [entry.spiffeId.slice(TD.length), entry.parentId?.slice(TD.length)]), [['/y', AGENT.slice(TD.length)], ['/x', '/y'], ['/y', '/x']])
  t.same(store.entriesAuthorizedTo(`${TD}/p`, []).map(entry => entry.spiffeId.slice(TD.length)), ['/p', '/q'], 'a cycle not reached from an agent too')
})

void t.test('authorized entries – an expired entry counts as absent: not listed, no path to its children, no alias', async t => {
  const clock = manualClock('2030-01-01T00:00:00Z')
  const store = openStore(t, tmpDataDir(t), { clock: clock.now })
  const make = registrar(store)
  const soon = Date.parse('2030-01-02T00:00:00Z') / 1000
  make('/kept', AGENT)
  make('/short', AGENT, { expiresAt: soon })
  make('/short-child', `${TD}/short`)
  make('/alias', SERVER, { selectors: [SN1], expiresAt: soon })
  make('/via-alias', `${TD}/alias`)
  make('/dup', AGENT, { expiresAt: soon })
  make('/dup', `${TD}/kept`)
  make('/dup-child', `${TD}/dup`)
  make('/expiring-leaf', `${TD}/kept`, { expiresAt: soon })
  t.same(paths(store.entriesAuthorizedTo(AGENT, NODE)),
    ['/kept', '/short', '/short-child', '/via-alias', '/dup', '/dup', '/dup-child', '/expiring-leaf'], 'all, before they expire')
  clock.set('2030-01-01T23:59:59Z')
  t.equal(store.entriesAuthorizedTo(AGENT, NODE).length, 8, 'still all, the second before')
  clock.set('2030-01-02T00:00:00Z')
  t.same(paths(store.entriesAuthorizedTo(AGENT, NODE)), ['/kept', '/dup', '/dup-child'],
    'from expiresAt on: the expired ones go, and what only they led to; an unexpired entry of the same SPIFFE ID still leads to its children')
  t.equal(store.listEntries().length, 9, 'all still stored')
})

void t.test('authorized entries – an entry reachable along several paths is listed once', async t => {
  const store = openStore(t, tmpDataDir(t))
  const make = registrar(store)
  const direct = make('/shared', AGENT)
  make('/alias-a', SERVER, { selectors: [SN1] })
  make('/alias-a', SERVER, { selectors: [CA] })
  const viaAlias = make('/shared', `${TD}/alias-a`)
  const under = make('/under-shared', `${TD}/shared`)
  make('/alias-b', SERVER, { selectors: [SN1, CA] })
  const underAlias = make('/alias-a', `${TD}/alias-b`)
  const found = store.entriesAuthorizedTo(AGENT, NODE)
  t.same(found.map(entry => entry.id), [direct.id, viaAlias.id, under.id, underAlias.id],
    'both /shared entries, /under-shared (under both), and /alias-a under /alias-b: reached through two aliases of one ID, a third alias and the agent')
  t.equal(found.filter(entry => entry.id === under.id).length, 1, 'each once')
  t.equal(new Set(found.map(entry => entry.id)).size, found.length)
})

void t.test('authorized entries – 5,000 entries: deep chains and wide fans, by indexed lookups', async t => {
  const store = openStore(t, tmpDataDir(t))
  const make = registrar(store)
  make('/fleet', SERVER, { selectors: [CA] })
  let parent = AGENT
  for (let i = 0; i < 2000; i++) {
    make(`/chain/${i}`, parent)
    parent = `${TD}/chain/${i}`
  }
  for (let i = 0; i < 2000; i++) make(`/fan/${i}`, `${TD}/fleet`)
  for (let i = 0; i < 999; i++) make(`/other/${i}`, OTHER_AGENT)
  const found = store.entriesAuthorizedTo(AGENT, NODE)
  t.equal(found.length, 4000, 'the whole chain of 2,000 and the fan of 2,000, and none of the other agent\'s 999')
  t.equal(found.at(-1)?.spiffeId, `${TD}/fan/1999`)
  t.ok(found.some(entry => entry.spiffeId === `${TD}/chain/1999`), 'the end of the chain')
  t.equal(store.entriesAuthorizedTo(OTHER_AGENT, []).length, 999)
})

void t.test('authorized entries – the alias and children lookups use indexes, not scans', async t => {
  const db = new Database(':memory:')
  t.teardown(() => db.close())
  applyMigrations(db, MIGRATIONS, 0)
  const plan = (sql: string): string => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all({ selectors: '[]', now: 0, serverId: '', parentId: '' }) as Array<{ detail: string }>)
    .map(row => row.detail).join('\n')
  const children = plan(ENTRY_SQL.childrenOf)
  t.match(children, /^SEARCH e USING INDEX entries_by_parent \(parent_id=\?\)$/, children)
  const aliases = plan(ENTRY_SQL.nodeAliases)
  t.match(aliases, /SEARCH s USING (COVERING )?INDEX entry_selectors_by_selector \(type=\? AND value=\?\)/, aliases)
  t.match(aliases, /SEARCH e USING (INDEX entries_by_parent \(parent_id=\?\)|PRIMARY KEY \(id=\?\))/)
  t.notMatch(aliases, /SCAN (e|s)\b/)
})
