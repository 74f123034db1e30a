import t from 'tap'
import Database from 'better-sqlite3'
import { parseSelector } from '../../../agent/store'
import type { EntryInput, RegistrationEntry } from '../../../agent/store'
import { ENTRY_SQL } from '../../../agent/store/entry-table'
import { MIGRATIONS, applyMigrations } from '../../../agent/store/schema'
import { thrown } from '../../helpers/errors'
import { manualClock, openStore, tmpDataDir } from './fixtures/store'

const FULL: EntryInput = {
  spiffeId: 'spiffe://example.org/ns/prod/api',
  parentId: 'spiffe://example.org/chaperone/agent',
  selectors: ['unix:uid:1001', { type: 'docker', value: 'label:app:api' }],
  x509SvidTtl: 3600,
  jwtSvidTtl: 300,
  dnsNames: ['api.example.org', '*.api.example.org'],
  hint: 'internal',
  admin: true,
  downstream: true,
  storeSvid: false,
  federatesWith: ['partner.org'],
  expiresAt: 2_000_000_000
}

const selectors = (...texts: string[]): ReturnType<typeof parseSelector>[] => texts.map(parseSelector)

void t.test('registration store – create, get, update and delete round-trip every field, across a reopen', async t => {
  const dataDir = tmpDataDir(t)
  const clock = manualClock('2030-01-01T00:00:00Z')
  let store = openStore(t, dataDir, { clock: clock.now })
  const created = store.createEntry(FULL)
  t.match(created.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'a random UUID')
  t.same(created, {
    ...FULL,
    id: created.id,
    selectors: selectors('docker:label:app:api', 'unix:uid:1001'),
    revision: 0,
    createdAt: Date.parse('2030-01-01T00:00:00Z') / 1000
  }, 'every field as given, selectors sorted')
  t.ok(Object.isFrozen(created) && Object.isFrozen(created.selectors) && Object.isFrozen(created.dnsNames), 'entries are frozen')
  t.same(store.getEntry(created.id), created, 'read back as written')

  const defaults = store.createEntry({ spiffeId: 'spiffe://example.org/minimal', selectors: ['unix:gid:50'] })
  t.match(defaults, {
    parentId: null, x509SvidTtl: 0, jwtSvidTtl: 0, dnsNames: [], hint: '', admin: false, downstream: false,
    storeSvid: false, federatesWith: [], expiresAt: null, revision: 0
  }, 'absent fields take their defaults')

  clock.set('2030-06-01T00:00:00Z')
  const updated = store.updateEntry(created.id, { selectors: ['unix:uid:2002'], parentId: null, hint: undefined, x509SvidTtl: 60 })
  t.same(updated, { ...created, selectors: selectors('unix:uid:2002'), parentId: null, x509SvidTtl: 60, revision: 1 },
    'given fields replace, undefined ones keep; id and createdAt never change')
  t.equal(store.updateEntry(created.id, {}).revision, 2, 'every update bumps the entry revision')

  store.close()
  store = openStore(t, dataDir, { clock: clock.now })
  t.same(store.getEntry(created.id), { ...updated, revision: 2 }, 'all fields survive a reopen')
  t.same(store.getEntry(defaults.id), defaults)
  t.same(store.deleteEntry(created.id), { ...updated, revision: 2 }, 'delete returns what was deleted')
  t.equal(store.getEntry(created.id), undefined)
  t.equal(store.getEntry(42 as never), undefined, 'a non-string ID finds nothing')
  t.same(store.listEntries(), [defaults])
})

void t.test('registration store – unknown IDs are ERR_ENTRY_NOT_FOUND', async t => {
  const store = openStore(t, tmpDataDir(t))
  for (const attempt of [() => store.updateEntry('nope', { hint: 'x' }), () => store.deleteEntry('nope')]) {
    t.match(thrown(attempt), { code: 'ERR_ENTRY_NOT_FOUND', message: 'no registration entry with ID "nope"' })
  }
  t.equal(store.revision, 0)
})

void t.test('registration store – same SPIFFE ID, parent and selector set is ERR_ENTRY_DUPLICATE, on create and update', async t => {
  const store = openStore(t, tmpDataDir(t))
  const first = store.createEntry({ spiffeId: 'spiffe://example.org/a', selectors: ['unix:uid:1', 'unix:gid:2'] })
  const err = thrown(() => store.createEntry({ spiffeId: 'spiffe://example.org/a', selectors: ['unix:gid:2', 'unix:uid:1', 'unix:uid:1'] }))
  t.equal(err.code, 'ERR_ENTRY_DUPLICATE', 'selector order and repeats do not matter')
  t.match(err.message, new RegExp(`entry ${first.id} already gives spiffe://example.org/a .*unix:gid:2, unix:uid:1`))
  const withParent = store.createEntry({ spiffeId: 'spiffe://example.org/a', parentId: 'spiffe://example.org/p', selectors: ['unix:uid:1', 'unix:gid:2'] })
  const fewer = store.createEntry({ spiffeId: 'spiffe://example.org/a', selectors: ['unix:uid:1'] })
  store.createEntry({ spiffeId: 'spiffe://example.org/b', selectors: ['unix:uid:1', 'unix:gid:2'] })
  t.equal(thrown(() => store.updateEntry(fewer.id, { selectors: ['unix:gid:2', 'unix:uid:1'] })).code, 'ERR_ENTRY_DUPLICATE')
  t.equal(thrown(() => store.updateEntry(withParent.id, { parentId: null })).code, 'ERR_ENTRY_DUPLICATE', 'null parent is a parent too')
  t.equal(store.updateEntry(first.id, { hint: 'same identity, new hint' }).revision, 1, 'an entry is no duplicate of itself')
  t.equal(store.listEntries().length, 4)
})

void t.test('registration store – listEntries filters by SPIFFE ID and selector, sorted by SPIFFE ID then ID', async t => {
  const store = openStore(t, tmpDataDir(t))
  const b1 = store.createEntry({ spiffeId: 'spiffe://example.org/b', selectors: ['unix:uid:1'] })
  const a = store.createEntry({ spiffeId: 'spiffe://example.org/a', selectors: ['unix:uid:1', 'unix:gid:7'] })
  const b2 = store.createEntry({ spiffeId: 'spiffe://example.org/b', selectors: ['unix:uid:2'], expiresAt: 1 })
  const byId = (x: RegistrationEntry, y: RegistrationEntry): number => x.id < y.id ? -1 : 1
  t.same(store.listEntries(), [a, ...[b1, b2].sort(byId)], 'expired entries are listed too')
  t.same(store.listEntries({ spiffeId: 'spiffe://example.org/b' }), [b1, b2].sort(byId))
  t.same(store.listEntries({ selector: 'unix:uid:1' }), [a, b1])
  t.same(store.listEntries({ selector: { type: 'unix', value: 'gid:7' } }), [a])
  t.same(store.listEntries({ spiffeId: 'spiffe://example.org/b', selector: 'unix:uid:1' }), [b1], 'both filters apply')
  t.same(store.listEntries({ spiffeId: 'spiffe://example.org/none' }), [])
  t.equal(thrown(() => store.listEntries({ selector: 'unix:bogus:1' })).code, 'ERR_SELECTOR_INVALID')
})

void t.test('registration store – entriesForSelectors returns entries whose selectors are all among the workload\'s', async t => {
  const clock = manualClock('2030-01-01T00:00:00Z')
  const store = openStore(t, tmpDataDir(t), { clock: clock.now })
  const uid = store.createEntry({ spiffeId: 'spiffe://example.org/uid', selectors: ['unix:uid:1001'] })
  clock.set('2030-01-01T00:00:01Z')
  const uidGid = store.createEntry({ spiffeId: 'spiffe://example.org/uid-gid', selectors: ['unix:uid:1001', 'unix:gid:50'] })
  const other = store.createEntry({ spiffeId: 'spiffe://example.org/other', selectors: ['unix:uid:2002'] })
  clock.set('2030-01-01T00:00:02Z')
  const expiring = store.createEntry({ spiffeId: 'spiffe://example.org/expiring', selectors: ['unix:gid:50'], expiresAt: Date.parse('2030-02-01T00:00:00Z') / 1000 })

  t.same(store.entriesForSelectors(selectors('unix:uid:1001', 'unix:gid:50', 'unix:path:/bin/app')), [uid, uidGid, expiring],
    'every subset matches, oldest first')
  t.same(store.entriesForSelectors(selectors('unix:uid:1001')), [uid], 'an entry needing gid:50 does not match without it')
  t.same(store.entriesForSelectors(selectors('unix:uid:1001', 'unix:uid:1001')), [uid], 'repeated workload selectors count once')
  t.same(store.entriesForSelectors(selectors('unix:uid:2002', 'docker:env:A=1')), [other])
  t.same(store.entriesForSelectors([]), [], 'no selectors, no entries')
  t.same(store.entriesForSelectors(selectors('unix:uid:9')), [])

  clock.set('2030-02-01T00:00:00Z')
  t.same(store.entriesForSelectors(selectors('unix:gid:50')), [], 'an entry is expired from its expiresAt on')
  t.same(store.listEntries({ selector: 'unix:gid:50' }).map(entry => entry.id).sort(), [uidGid.id, expiring.id].sort(), 'but still listed')
  store.updateEntry(uidGid.id, { selectors: ['unix:gid:50'] })
  t.same(store.entriesForSelectors(selectors('unix:gid:50')).map(entry => entry.id), [uidGid.id], 'updates re-index selectors')
  store.deleteEntry(uidGid.id)
  t.same(store.entriesForSelectors(selectors('unix:gid:50', 'unix:uid:1001')), [uid], 'deletes remove them')
  const twins = ['a', 'b', 'c'].map(name => store.createEntry({ spiffeId: `spiffe://example.org/${name}`, selectors: ['unix:uid:77'] }))
  t.same(store.entriesForSelectors(selectors('unix:uid:77')).map(entry => entry.id), twins.map(entry => entry.id),
    'created in the same second: still in creation order (the first is the default identity)')
  store.updateEntry(twins[0].id, { hint: 'updated' })
  t.same(store.entriesForSelectors(selectors('unix:uid:77')).map(entry => entry.id), twins.map(entry => entry.id), 'an update keeps the order')
})

void t.test('registration store – the workload lookup and the duplicate check use indexes, not scans', async t => {
  const db = new Database(':memory:')
  t.teardown(() => db.close())
  applyMigrations(db, MIGRATIONS, 0)
  const plan = (sql: string): string => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all({ selectors: '[]', now: 0, spiffeId: '', parentId: '', exceptId: null }) as Array<{ detail: string }>)
    .map(row => row.detail).join('\n')
  const matching = plan(ENTRY_SQL.matching)
  t.match(matching, /SEARCH s USING (COVERING )?INDEX entry_selectors_by_selector \(type=\? AND value=\?\)/, matching)
  t.match(matching, /SEARCH e USING PRIMARY KEY \(id=\?\)/)
  t.notMatch(matching, /SCAN (e|s)\b/)
  const duplicate = plan(ENTRY_SQL.duplicate.replace('@selectors', "'[]'"))
  t.match(duplicate, /SEARCH entries USING INDEX entries_identity/, duplicate)
})

void t.test('registration store – meta values persist and leave the store revision alone', async t => {
  const dataDir = tmpDataDir(t)
  let store = openStore(t, dataDir)
  t.equal(store.getMeta('ca.serial'), undefined)
  store.setMeta('ca.serial', '41')
  store.setMeta('ca.serial', '42')
  t.equal(store.revision, 0)
  t.throws(() => store.setMeta('store_revision', '99'), TypeError, 'the store revision is not writable')
  store.close()
  store = openStore(t, dataDir)
  t.equal(store.getMeta('ca.serial'), '42')
  t.equal(store.getMeta('store_revision'), '0')
})
