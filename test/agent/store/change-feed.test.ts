import t from 'tap'
import pino from 'pino'
import type { EntryChange, StoreChange } from '../../../agent/store'
import { thrown } from '../../helpers/errors'
import { changeSummary, openStore, tmpDataDir } from './fixtures/store'

void t.test('change feed – every committed change, in order, with its kind and a rising store revision that persists', async t => {
  const dataDir = tmpDataDir(t)
  let store = openStore(t, dataDir)
  t.equal(store.revision, 0, 'a new store is at revision 0')
  const changes: StoreChange[] = []
  store.onChange(change => changes.push(change))
  const a = store.createEntry({ spiffeId: 'spiffe://example.org/a', selectors: ['unix:uid:1'] })
  const b = store.createEntry({ spiffeId: 'spiffe://example.org/b', selectors: ['unix:uid:2'] })
  const a1 = store.updateEntry(a.id, { hint: 'a' })
  store.deleteEntry(b.id)
  thrown(() => store.createEntry({ spiffeId: 'spiffe://example.org/a', selectors: ['unix:uid:1'] }))
  thrown(() => store.deleteEntry(b.id))
  t.same(changes.map(changeSummary), [
    'created spiffe://example.org/a @1',
    'created spiffe://example.org/b @2',
    'updated spiffe://example.org/a @3',
    'deleted spiffe://example.org/b @4'
  ], 'failed writes announce nothing')
  t.same((changes[2] as EntryChange).entry, a1, 'an update carries the new entry')
  t.same((changes[3] as EntryChange).entry, b, 'a delete carries the deleted entry')
  t.equal(store.revision, 4)
  store.close()
  store = openStore(t, dataDir)
  t.equal(store.revision, 4, 'the store revision survives a reopen')
  store.onChange(change => changes.push(change))
  store.createEntry({ spiffeId: 'spiffe://example.org/c', selectors: ['unix:uid:3'] })
  t.equal(changes.at(-1)?.storeRevision, 5, 'and continues from there')
})

void t.test('change feed – a throwing listener is logged; the write and the other listeners go on', async t => {
  const logLines: string[] = []
  const logger = pino({}, { write: (line: string) => { logLines.push(line) } })
  const store = openStore(t, tmpDataDir(t), { logger })
  const heard: string[] = []
  store.onChange(() => { throw new Error('listener bug') })
  store.onChange(change => heard.push(changeSummary(change)))
  const entry = store.createEntry({ spiffeId: 'spiffe://example.org/a', selectors: ['unix:uid:1'] })
  t.same(store.getEntry(entry.id), entry, 'the entry is stored')
  t.same(heard, ['created spiffe://example.org/a @1'], 'the next listener still hears it')
  t.equal(logLines.length, 1)
  const logged = JSON.parse(logLines[0]) as { level: number, msg: string, err: { message: string }, component: string, change: object }
  t.match(logged, { level: 50, component: 'registration-store', err: { message: 'listener bug' }, change: { kind: 'created', entryId: entry.id, storeRevision: 1 } })
  t.match(logged.msg, /change listener threw/)
})

void t.test('change feed – writes made by a listener are announced after the change that caused them', async t => {
  const store = openStore(t, tmpDataDir(t))
  const first: string[] = []
  const second: string[] = []
  store.onChange(change => {
    first.push(changeSummary(change))
    if (change.kind === 'created') store.updateEntry(change.entry.id, { hint: 'seen' })
  })
  store.onChange(change => second.push(changeSummary(change)))
  store.createEntry({ spiffeId: 'spiffe://example.org/a', selectors: ['unix:uid:1'] })
  const expected = ['created spiffe://example.org/a @1', 'updated spiffe://example.org/a @2']
  t.same(first, expected)
  t.same(second, expected, 'every listener hears the changes in commit order')
})

void t.test('change feed – unsubscribing stops delivery, and closing drops every listener', async t => {
  const store = openStore(t, tmpDataDir(t))
  const heard: string[] = []
  const listener = (change: StoreChange): void => { heard.push(changeSummary(change)) }
  const unsubscribe = store.onChange(listener)
  const unsubscribeAgain = store.onChange(listener)
  store.createEntry({ spiffeId: 'spiffe://example.org/a', selectors: ['unix:uid:1'] })
  t.equal(heard.length, 2, 'one function subscribed twice hears twice')
  unsubscribe()
  unsubscribe()
  store.createEntry({ spiffeId: 'spiffe://example.org/b', selectors: ['unix:uid:2'] })
  t.equal(heard.length, 3, 'each unsubscribe removes one subscription')
  unsubscribeAgain()
  store.createEntry({ spiffeId: 'spiffe://example.org/c', selectors: ['unix:uid:3'] })
  t.equal(heard.length, 3)
  store.close()
  store.close()
  t.pass('closing twice is harmless')
})
