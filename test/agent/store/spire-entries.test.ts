import t from 'tap'
import { thrown } from '../../helpers/errors'
import { openStore, tmpDataDir } from './fixtures/store'

// What the store keeps for SPIRE's server API: store_svid, caller-given entry IDs, whole-entry replacement, the
// similar-entry lookup, SPIRE's selector rule, and this node's agent ID with the entries it serves.

const ID = 'spiffe://example.org/app'

void t.test('store – the agent ID is in SPIRE\'s agent namespace, made once, kept across reopening', async t => {
  const dataDir = tmpDataDir(t)
  const first = openStore(t, dataDir)
  t.match(first.agentId, /^spiffe:\/\/example\.org\/spire\/agent\/chaperone\/[0-9a-f]{32}$/)
  const agentId = first.agentId
  first.close()
  t.equal(openStore(t, dataDir).agentId, agentId, 'the same after a reopen')
  t.not(openStore(t, tmpDataDir(t)).agentId, agentId, 'another store, another node')
})

void t.test('store – store_svid is kept, needs selectors of one type, and is never issued to a workload', async t => {
  const store = openStore(t, tmpDataDir(t))
  const stored = store.createEntry({ spiffeId: ID, selectors: ['unix:uid:1', 'unix:gid:2'], storeSvid: true })
  t.equal(stored.storeSvid, true)
  t.equal(store.getEntry(stored.id)?.storeSvid, true, 'read back')
  t.same(store.entriesForSelectors([{ type: 'unix', value: 'uid:1' }, { type: 'unix', value: 'gid:2' }]), [], 'not for the Workload API')
  const err = thrown(() => store.createEntry({ spiffeId: `${ID}/2`, selectors: ['unix:uid:1', 'docker:image_id:x'], storeSvid: true }))
  t.equal(err.code, 'ERR_ENTRY_INVALID')
  t.match(err.message, 'storeSvid needs selectors all of one type; got docker, unix')
  t.equal(thrown(() => store.updateEntry(stored.id, { selectors: ['unix:uid:1', 'docker:image_id:x'] })).code, 'ERR_ENTRY_INVALID', 'an update too')
  t.equal(thrown(() => store.createEntry({ spiffeId: ID, selectors: ['unix:uid:9'], storeSvid: 'yes' as never })).code, 'ERR_ENTRY_INVALID')
})

void t.test('store – an entry ID given by the caller: SPIRE\'s characters, at most 255, never taken twice', async t => {
  const store = openStore(t, tmpDataDir(t))
  t.equal(store.createEntry({ spiffeId: ID, selectors: ['unix:uid:1'] }, { id: 'My_entry-1.0' }).id, 'My_entry-1.0')
  t.equal(store.createEntry({ spiffeId: ID, selectors: ['unix:uid:2'] }, { id: 'x'.repeat(255) }).id.length, 255)
  for (const bad of ['', 'with space', 'slash/', 'ü', 'x'.repeat(256)]) {
    const err = thrown(() => store.createEntry({ spiffeId: ID, selectors: ['unix:uid:3'] }, { id: bad }))
    t.equal(err.code, 'ERR_ENTRY_INVALID', JSON.stringify(bad.slice(0, 20)))
    t.match(err.message, /an entry ID must be 1 to 255 letters, digits, "\.", "_" or "-"/)
  }
  const taken = thrown(() => store.createEntry({ spiffeId: `${ID}/other`, selectors: ['unix:uid:3'] }, { id: 'My_entry-1.0' }))
  t.equal(taken.code, 'ERR_ENTRY_ID_IN_USE')
  t.equal(store.listEntries().length, 2, 'nothing more stored')
})

void t.test('store – replaceEntry sets every field as a create would read it, keeping the ID and createdAt', async t => {
  const store = openStore(t, tmpDataDir(t))
  const old = store.createEntry({ spiffeId: ID, selectors: ['unix:uid:1'], x509SvidTtl: 600, hint: 'h', admin: true, dnsNames: ['a.example.org'] })
  const replaced = store.replaceEntry(old.id, { spiffeId: `${ID}/new`, selectors: ['unix:uid:2'] })
  t.same(replaced, { ...old, spiffeId: `${ID}/new`, selectors: [{ type: 'unix', value: 'uid:2' }], x509SvidTtl: 0, hint: '', admin: false, dnsNames: [], revision: 1 })
  t.equal(thrown(() => store.replaceEntry('nope', { spiffeId: ID, selectors: ['unix:uid:1'] })).code, 'ERR_ENTRY_NOT_FOUND')
  const other = store.createEntry({ spiffeId: ID, selectors: ['unix:uid:3'] })
  t.equal(thrown(() => store.replaceEntry(other.id, { spiffeId: `${ID}/new`, selectors: ['unix:uid:2'] })).code, 'ERR_ENTRY_DUPLICATE')
})

void t.test('store – findSimilarEntry: the same SPIFFE ID, parent ID and selector set, in any order', async t => {
  const store = openStore(t, tmpDataDir(t))
  const made = store.createEntry({ spiffeId: ID, parentId: 'spiffe://example.org/p', selectors: ['unix:uid:1', 'unix:gid:2'] })
  t.equal(store.findSimilarEntry({ spiffeId: ID, parentId: 'spiffe://example.org/p', selectors: ['unix:gid:2', 'unix:uid:1'], hint: 'other' })?.id, made.id)
  t.equal(store.findSimilarEntry({ spiffeId: ID, parentId: null, selectors: ['unix:uid:1', 'unix:gid:2'] }), undefined, 'another parent')
  t.equal(store.findSimilarEntry({ spiffeId: ID, parentId: 'spiffe://example.org/p', selectors: ['unix:uid:1'] }), undefined, 'another selector set')
  t.equal(thrown(() => store.findSimilarEntry({ spiffeId: 'nope', selectors: ['unix:uid:1'] })).code, 'ERR_ENTRY_INVALID', 'the input is validated')
})

void t.test('store – SPIRE\'s selector rule accepts any type:value; ours only what our attestors produce', async t => {
  const store = openStore(t, tmpDataDir(t))
  const spire = { selectorSyntax: 'spire' } as const
  const k8s = store.createEntry({ spiffeId: ID, selectors: [{ type: 'k8s', value: 'ns:default' }, 'unix:uid:01'] }, spire)
  t.same(k8s.selectors, [{ type: 'k8s', value: 'ns:default' }, { type: 'unix', value: 'uid:01' }])
  t.equal(thrown(() => store.createEntry({ spiffeId: ID, selectors: ['k8s:ns:default'] })).code, 'ERR_SELECTOR_INVALID', 'the admin API keeps its check')
  for (const bad of ['k8s', ':x', 'k8s:', { type: 'a:b', value: 'c' }]) {
    const err = thrown(() => store.createEntry({ spiffeId: `${ID}/x`, selectors: [bad] }, spire))
    t.equal(err.code, 'ERR_SELECTOR_INVALID', JSON.stringify(bad))
  }
})

void t.test('store – isServed: parented on the agent (or on nothing), or on an entry it serves, recursively', async t => {
  const store = openStore(t, tmpDataDir(t))
  const td = 'spiffe://example.org'
  const make = (path: string, parentId: string | null): void => { store.createEntry({ spiffeId: `${td}${path}`, parentId, selectors: ['unix:uid:1'] }) }
  make('/root', store.agentId)
  make('/none', null)
  make('/child', `${td}/root`)
  make('/grandchild', `${td}/child`)
  make('/foreign', `${td}/spire/agent/x509pop/other`)
  make('/foreign-child', `${td}/foreign`)
  make('/a', `${td}/b`)
  make('/b', `${td}/a`)
  const served = store.entriesForSelectors([{ type: 'unix', value: 'uid:1' }]).map(e => e.spiffeId.slice(td.length))
  t.same(served, ['/root', '/none', '/child', '/grandchild'])
  t.equal(store.isServed({ parentId: `${td}/a` }), false, 'a cycle ends')
  t.equal(store.isServed({ parentId: `${td}/nobody` }), false)
  // A long chain is walked without recursion.
  let parent = store.agentId
  for (let i = 0; i < 5000; i++) {
    make(`/chain/${i}`, parent)
    parent = `${td}/chain/${i}`
  }
  t.equal(store.isServed({ parentId: parent }), true, 'the end of a chain of 5000')
})
