import t from 'tap'
import Database from 'better-sqlite3'
import { generateKeyPairSync } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import pino from 'pino'
import { STORE_FILE_NAME } from '../../../agent/store'
import type { FederatedBundleInput, StoreChange } from '../../../agent/store'
import { freezeEntry } from '../../../agent/store/entry'
import { LATEST_SCHEMA_VERSION, MIGRATIONS, applyMigrations, schemaVersion } from '../../../agent/store/schema'
import type { X509Bundle } from '../../../spiffe/x509-bundle'
import { thrown } from '../../helpers/errors'
import { foreignTrustDomain } from './fixtures/foreign-trust-domain'
import { changeSummary, manualClock, openStore, tmpDataDir } from './fixtures/store'

const other = foreignTrustDomain('other.example')
const third = foreignTrustDomain('third.example')
const pem = (trustDomain: string, bundle: string): FederatedBundleInput => ({ trustDomain, format: 'pem', bundle })
const spiffe = (trustDomain: string, bundle: string): FederatedBundleInput => ({ trustDomain, format: 'spiffe', bundle })
/** The X.509 authorities' DER, base64: what a bundle trusts, independent of how it was read. */
const roots = (bundle: { x509: X509Bundle }): string[] => bundle.x509.authorities.map(cert => cert.raw.toString('base64'))

void t.test('federated bundles – set from PEM and from a SPIFFE document, replace, list by name, delete', async t => {
  const clock = manualClock('2030-01-01T00:00:00Z')
  const store = openStore(t, tmpDataDir(t), { clock: clock.now })
  t.same(store.listFederatedBundles(), [], 'a new store holds none')

  const fromPem = store.setFederatedBundle(pem('spiffe://third.example', third.pem))
  t.equal(fromPem.trustDomain.name, 'third.example', 'the trust domain as an ID …')
  t.same(roots(fromPem.bundle), [third.ca.certDer.toString('base64')], 'PEM: the X.509 authority')
  t.equal(fromPem.bundle.jwt.size, 0, 'and no JWT key')
  t.equal(fromPem.bundle.sequence, undefined, 'and no sequence')
  t.equal(fromPem.updatedAt, Date.parse('2030-01-01T00:00:00Z') / 1000)

  const fromSpiffe = store.setFederatedBundle(spiffe('other.example', other.spiffeJson({ sequence: 7 })))
  t.equal(fromSpiffe.trustDomain.name, 'other.example', '… or as a name')
  t.same(roots(fromSpiffe.bundle), [other.ca.certDer.toString('base64')], 'SPIFFE: the X.509 authority')
  t.same([...fromSpiffe.bundle.jwt.keys.keys()], [other.kid], 'and the JWT key')
  t.equal(fromSpiffe.bundle.sequence, 7, 'and the sequence')
  t.same(store.listFederatedBundles().map(b => b.trustDomain.name), ['other.example', 'third.example'], 'listed by name')

  clock.set('2030-01-02T00:00:00Z')
  const replaced = store.setFederatedBundle(spiffe('other.example', other.spiffeJson({ jwtOnly: true })))
  t.equal(replaced.bundle.x509.size, 0, 'a set replaces the whole bundle: the X.509 authority is gone')
  t.equal(replaced.bundle.sequence, undefined)
  t.equal(replaced.updatedAt, Date.parse('2030-01-02T00:00:00Z') / 1000)
  t.equal(store.getFederatedBundle('spiffe://other.example'), replaced, 'get answers the latest')
  t.equal(store.findFederatedBundle('other.example'), replaced)
  t.equal(store.listFederatedBundles().length, 2, 'still two')

  const deleted = store.deleteFederatedBundle('third.example')
  t.equal(deleted, fromPem, 'a delete returns what it deleted')
  t.same(store.listFederatedBundles().map(b => b.trustDomain.name), ['other.example'])
  t.equal(store.findFederatedBundle('third.example'), undefined)
  t.match(thrown(() => store.getFederatedBundle('third.example')), { code: 'ERR_BUNDLE_NOT_FOUND', message: /no federated bundle is held for "third\.example"/ })
  t.match(thrown(() => store.deleteFederatedBundle('spiffe://third.example')), { code: 'ERR_BUNDLE_NOT_FOUND' }, 'nor can it be deleted twice')
})

void t.test('federated bundles – bad input is refused with a stable code, and changes nothing', async t => {
  const store = openStore(t, tmpDataDir(t))
  const changes: StoreChange[] = []
  store.onChange(change => changes.push(change))
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const privateJwk = { use: 'jwt-svid', kid: 'k', ...privateKey.export({ format: 'jwk' }) }
  const cases: Array<[string, FederatedBundleInput, string, RegExp]> = [
    ['our own trust domain, as a name', pem('example.org', other.pem), 'ERR_BUNDLE_OWN_TRUST_DOMAIN', /spiffe:\/\/example\.org is this agent's own trust domain: its bundle is the CA's/],
    ['our own trust domain, as an ID', spiffe('spiffe://example.org', other.spiffeJson()), 'ERR_BUNDLE_OWN_TRUST_DOMAIN', /own trust domain/],
    ['an invalid trust domain', pem('Other.example', other.pem), 'ERR_TRUST_DOMAIN_INVALID', /lowercase/],
    ['an unknown format', { trustDomain: 'other.example', format: 'der' as 'pem', bundle: other.pem }, 'ERR_BUNDLE_INVALID', /format must be "pem" or "spiffe"; got "der"/],
    ['an empty document', pem('other.example', ' \n'), 'ERR_BUNDLE_INVALID', /the bundle for other\.example is empty/],
    ['text that is no PEM', pem('other.example', 'hello'), 'ERR_BUNDLE_INVALID', /no PEM certificates found/],
    ['a private key in the PEM', pem('other.example', `${other.pem}${other.ca.key.export({ type: 'pkcs8', format: 'pem' }) as string}`), 'ERR_BUNDLE_INVALID', /unexpected PEM block "PRIVATE KEY"/],
    ['a SPIFFE document that is no JSON', spiffe('other.example', other.pem), 'ERR_BUNDLE_INVALID', /not valid JSON/],
    ['a SPIFFE document without keys', spiffe('other.example', '{"spiffe_sequence":1}'), 'ERR_BUNDLE_INVALID', /"keys" array is required/],
    ['a SPIFFE document that trusts nothing', spiffe('other.example', '{"keys":[{"use":"wit-svid","kty":"EC"}]}'), 'ERR_BUNDLE_INVALID', /holds no X\.509 authority and no JWT key/],
    ['a JWT key with its private part', spiffe('other.example', JSON.stringify({ keys: [privateJwk] })), 'ERR_BUNDLE_INVALID', /private key material/],
    ['a PEM document given as SPIFFE', spiffe('other.example', JSON.stringify({ keys: [{ use: 'x509-svid', x5c: ['bm90IGEgY2VydA=='] }] })), 'ERR_BUNDLE_INVALID', /malformed certificate/]
  ]
  for (const [what, input, code, message] of cases) t.match(thrown(() => store.setFederatedBundle(input)), { code, message }, what)
  t.match(thrown(() => store.getFederatedBundle('example.org')), { code: 'ERR_BUNDLE_OWN_TRUST_DOMAIN' }, 'our own is not a federated bundle to show')
  t.match(thrown(() => store.deleteFederatedBundle('spiffe://example.org')), { code: 'ERR_BUNDLE_OWN_TRUST_DOMAIN' }, 'nor to delete')
  t.same(store.listFederatedBundles(), [], 'nothing was stored')
  t.same(changes, [], 'nothing announced')
  t.equal(store.revision, 0, 'the revision did not move')
})

void t.test('federated bundles – every set and delete bumps the store revision and reaches the change feed, in commit order with entries', async t => {
  const store = openStore(t, tmpDataDir(t))
  const heard: string[] = []
  store.onChange(change => heard.push(changeSummary(change)))
  const entry = store.createEntry({ spiffeId: 'spiffe://example.org/a', selectors: ['unix:uid:1'], federatesWith: ['other.example'] })
  store.setFederatedBundle(pem('other.example', other.pem))
  store.setFederatedBundle(spiffe('other.example', other.spiffeJson()))
  store.updateEntry(entry.id, { federatesWith: [] })
  store.deleteFederatedBundle('other.example')
  t.same(heard, [
    'created spiffe://example.org/a @1',
    'federated-bundle-set other.example @2',
    'federated-bundle-set other.example @3',
    'updated spiffe://example.org/a @4',
    'federated-bundle-deleted other.example @5'
  ])
  t.equal(store.revision, 5)
  const changes: StoreChange[] = []
  store.onChange(change => changes.push(change))
  const set = store.setFederatedBundle(pem('other.example', other.pem))
  t.equal(changes.length, 1)
  t.match(changes[0], { kind: 'federated-bundle-set', storeRevision: 6 })
  t.equal('bundle' in changes[0] && changes[0].bundle, set, 'a set carries the bundle it set (what get answers from then on)')
})

void t.test('federated bundles – kept durably: the same bundles, sequence, times and revision after a reopen', async t => {
  const dataDir = tmpDataDir(t)
  const clock = manualClock('2030-01-01T00:00:00Z')
  let store = openStore(t, dataDir, { clock: clock.now })
  store.setFederatedBundle(spiffe('other.example', other.spiffeJson({ sequence: 42 })))
  store.setFederatedBundle(pem('third.example', third.pem))
  const before = store.listFederatedBundles().map(b => ({ td: b.trustDomain.name, doc: b.bundle.marshal(), updatedAt: b.updatedAt }))
  const revision = store.revision
  store.close()
  store = openStore(t, dataDir)
  t.same(store.listFederatedBundles().map(b => ({ td: b.trustDomain.name, doc: b.bundle.marshal(), updatedAt: b.updatedAt })), before)
  t.equal(store.getFederatedBundle('other.example').bundle.sequence, 42)
  t.same([...store.getFederatedBundle('other.example').bundle.jwt.keys.keys()], [other.kid])
  t.equal(store.revision, revision, 'the revision too')
  store.close()
  // The row as stored: the SPIFFE bundle document, its sequence beside it.
  const db = new Database(join(dataDir, STORE_FILE_NAME), { readonly: true })
  t.teardown(() => db.close())
  const rows = db.prepare('SELECT trust_domain, sequence, bundle FROM federated_bundles ORDER BY trust_domain').all() as Array<{ trust_domain: string, sequence: number | null, bundle: string }>
  t.same(rows.map(r => [r.trust_domain, r.sequence]), [['other.example', 42], ['third.example', null]])
  t.match(JSON.parse(rows[0].bundle), { keys: [{ use: 'x509-svid', x5c: [other.ca.certDer.toString('base64')] }, { use: 'jwt-svid', kid: other.kid }], spiffe_sequence: 42 })
})

void t.test('federated bundles – a stored bundle that no longer reads is logged and left out; the store still opens', async t => {
  const dataDir = tmpDataDir(t)
  const store = openStore(t, dataDir)
  store.setFederatedBundle(pem('other.example', other.pem))
  store.setFederatedBundle(pem('third.example', third.pem))
  store.close()
  const db = new Database(join(dataDir, STORE_FILE_NAME))
  db.prepare("UPDATE federated_bundles SET bundle = '{\"keys\": 1}' WHERE trust_domain = 'third.example'").run()
  db.close()
  const lines: string[] = []
  const reopened = openStore(t, dataDir, { logger: pino({}, { write: (line: string) => { lines.push(line) } }) })
  t.same(reopened.listFederatedBundles().map(b => b.trustDomain.name), ['other.example'])
  t.match(lines.map(line => JSON.parse(line) as object), [{ level: 50, trustDomain: 'third.example', msg: /cannot be read; it is not served until it is set again/ }])
  reopened.setFederatedBundle(pem('third.example', third.pem))
  t.same(reopened.listFederatedBundles().map(b => b.trustDomain.name), ['other.example', 'third.example'], 'setting it again repairs it')
})

void t.test('federated bundles – a version-1 store upgrades in place: its entries and revision kept, bundles settable', async t => {
  const dataDir = tmpDataDir(t)
  mkdirSync(dataDir, { mode: 0o700 })
  // A store exactly as a build that knew only version 1 left it: its schema, an entry, the revision that made it.
  const v1 = new Database(join(dataDir, STORE_FILE_NAME))
  applyMigrations(v1, MIGRATIONS.slice(0, 1), 1_800_000_000)
  const entry = freezeEntry({
    id: 'entry-from-v1', spiffeId: 'spiffe://example.org/old', parentId: null, selectors: [{ type: 'unix', value: 'uid:7' }],
    x509SvidTtl: 0, jwtSvidTtl: 0, dnsNames: [], hint: '', admin: false, downstream: false, storeSvid: false, federatesWith: ['other.example'],
    expiresAt: null, revision: 3, createdAt: 1_800_000_000
  })
  // Written with version 1's columns (today's EntryTable knows later ones).
  v1.prepare(`INSERT INTO entries (id, spiffe_id, parent_id, selectors, x509_svid_ttl, jwt_svid_ttl, dns_names, hint, admin,
    downstream, federates_with, expires_at, revision, created_at, creation_order)
    VALUES ('entry-from-v1', 'spiffe://example.org/old', NULL, '["unix:uid:7"]', 0, 0, '[]', '', 0, 0, '["other.example"]', NULL, 3, 1800000000, 1)`).run()
  v1.prepare("INSERT INTO entry_selectors (entry_id, type, value) VALUES ('entry-from-v1', 'unix', 'uid:7')").run()
  v1.prepare("UPDATE meta SET value = '4' WHERE key = 'store_revision'").run()
  t.equal(schemaVersion(v1), 1)
  v1.close()

  const clock = manualClock('2030-06-01T00:00:00Z')
  const store = openStore(t, dataDir, { clock: clock.now })
  t.same(store.getEntry('entry-from-v1'), entry, 'the entry is as it was')
  t.same(store.entriesForSelectors([{ type: 'unix', value: 'uid:7' }]).map(e => e.id), ['entry-from-v1'], 'and still matches')
  t.equal(store.revision, 4, 'the revision is kept')
  t.same(store.listFederatedBundles(), [])
  store.setFederatedBundle(pem('other.example', other.pem))
  t.equal(store.revision, 5, 'and goes on from there')
  store.close()

  const db = new Database(join(dataDir, STORE_FILE_NAME), { readonly: true })
  t.teardown(() => db.close())
  t.equal(schemaVersion(db), LATEST_SCHEMA_VERSION)
  const upgradedAt = Date.parse('2030-06-01T00:00:00Z') / 1000
  t.same(db.prepare('SELECT version, applied_at FROM schema_migrations ORDER BY version').all(),
    [{ version: 1, applied_at: 1_800_000_000 }, ...MIGRATIONS.slice(1).map(m => ({ version: m.version, applied_at: upgradedAt }))], 'the later versions applied once each, at the upgrade')
  t.same(db.prepare('SELECT trust_domain FROM federated_bundles').all(), [{ trust_domain: 'other.example' }])
  t.equal(db.pragma('integrity_check', { simple: true }), 'ok')
})
