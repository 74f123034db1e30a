import t from 'tap'
import Database from 'better-sqlite3'
import { join } from 'node:path'
import { createTestCa } from '../../../certs-test'
import { STORE_FILE_NAME } from '../../../agent/store'
import type { StoreChange } from '../../../agent/store'
import { LATEST_SCHEMA_VERSION, schemaVersion } from '../../../agent/store/schema'
import { thrown } from '../../helpers/errors'
import { changeSummary, manualClock, openStore, storeAtVersion, tmpDataDir } from './fixtures/store'

// Federation relationships (SPIRE's `federation create`): their rules, their durability, their bootstrap bundles,
// and that ending one drops the trust domain's bundle (SPIFFE Federation §6.3).

const NOW = '2030-01-01T00:00:00Z'
const B = 'plant-b.example'
const SPIFFE = { trustDomain: B, bundleEndpointUrl: 'https://plant-b.example:8443/', profile: 'https_spiffe', endpointSpiffeId: `spiffe://${B}/spire/server` }
const WEB = { trustDomain: 'plant-c.example', bundleEndpointUrl: 'https://bundles.plant-c.example/td', profile: 'https_web' }

function pemOf (name: string): string {
  return createTestCa(name).certPem
}

void t.test('relationships – created with every field, listed by trust domain, durable across a reopen; each change on the feed', async t => {
  const dataDir = tmpDataDir(t)
  let store = openStore(t, dataDir, { clock: manualClock(NOW).now })
  const changes: StoreChange[] = []
  store.onChange(change => changes.push(change))
  const created = store.relationships.create(SPIFFE)
  t.equal(created.trustDomain.name, B)
  t.equal(created.bundleEndpointUrl, 'https://plant-b.example:8443/')
  t.same(created.profile.kind === 'https_spiffe' && created.profile.endpointSpiffeId.toString(), `spiffe://${B}/spire/server`)
  t.equal(created.source, 'api')
  t.equal(created.createdAt, Date.parse(NOW) / 1000)
  store.relationships.create(WEB, { source: 'config' })
  t.same(store.relationships.list().map(r => [r.trustDomain.name, r.profile.kind, r.source]), [[B, 'https_spiffe', 'api'], ['plant-c.example', 'https_web', 'config']])
  t.same(changes.map(changeSummary), [`relationship-created ${B} @1`, 'relationship-created plant-c.example @2'])
  store.close()

  store = openStore(t, dataDir)
  t.same(store.relationships.list().map(r => [r.trustDomain.name, r.bundleEndpointUrl, r.source]), [[B, SPIFFE.bundleEndpointUrl, 'api'], ['plant-c.example', WEB.bundleEndpointUrl, 'config']], 'both survive')
  t.equal(store.relationships.get(`spiffe://${B}`).trustDomain.name, B, 'found by its SPIFFE form too')
  t.equal(store.relationships.find('nowhere.example'), undefined)
})

void t.test('relationships – SPIRE\'s rules refuse bad ones with ERR_RELATIONSHIP_INVALID, naming the reason; nothing is stored', async t => {
  const store = openStore(t, tmpDataDir(t))
  const cases: Array<[string, object, RegExp]> = [
    ['own trust domain', { ...WEB, trustDomain: 'example.org' }, /own trust domain/],
    ['bad trust domain', { ...WEB, trustDomain: 'Not A Domain!' }, /trust domain is not valid/],
    ['http URL', { ...WEB, bundleEndpointUrl: 'http://plant-c.example/' }, /must use the https scheme/],
    ['no URL', { ...WEB, bundleEndpointUrl: '' }, /URL is missing/],
    ['not a URL', { ...WEB, bundleEndpointUrl: 'plant-c.example' }, /failed to parse bundle endpoint URL/],
    ['user info', { ...WEB, bundleEndpointUrl: 'https://u:p@plant-c.example/' }, /must not contain user info/],
    ['no profile', { ...WEB, profile: 'ftp' }, /profile must be "https_web" or "https_spiffe"/],
    ['https_spiffe without an ID', { ...SPIFFE, endpointSpiffeId: undefined }, /needs the endpoint's SPIFFE ID/],
    ['https_spiffe bad ID', { ...SPIFFE, endpointSpiffeId: 'spiffe://x/../y' }, /endpoint SPIFFE ID is not valid/],
    ['https_web with an ID', { ...WEB, endpointSpiffeId: 'spiffe://plant-c.example/x' }, /https_spiffe profile only/]
  ]
  for (const [name, input, message] of cases) {
    const err = thrown(() => store.relationships.create(input as typeof WEB))
    t.equal(err?.code, 'ERR_RELATIONSHIP_INVALID', name)
    t.match(err?.message, message, name)
  }
  t.same(store.relationships.list(), [], 'nothing stored')
  t.equal(store.revision, 0, 'no revision spent')
})

void t.test('relationships – a bootstrap bundle is stored as the trust domain\'s bundle; a bad one refuses the relationship', async t => {
  const store = openStore(t, tmpDataDir(t))
  const err = thrown(() => store.relationships.create(SPIFFE, { bundle: { format: 'pem', bundle: 'not a certificate' } }))
  t.equal(err?.code, 'ERR_BUNDLE_INVALID')
  t.equal(store.relationships.find(B), undefined, 'no relationship without its bundle')
  store.relationships.create(SPIFFE, { bundle: { format: 'pem', bundle: pemOf(B) } })
  t.equal(store.findFederatedBundle(B)?.bundle.x509.size, 1, 'the bundle is held')
  t.equal(thrown(() => store.relationships.create(SPIFFE))?.code, 'ERR_RELATIONSHIP_EXISTS')
})

void t.test('relationships – update changes the URL or the profile and keeps the rest; delete drops the bundle; config ones change only from config', async t => {
  const store = openStore(t, tmpDataDir(t))
  store.relationships.create(SPIFFE, { bundle: { format: 'pem', bundle: pemOf(B) } })
  const moved = store.relationships.update(B, { bundleEndpointUrl: 'https://10.0.0.2:9443/' })
  t.equal(moved.bundleEndpointUrl, 'https://10.0.0.2:9443/')
  t.equal(moved.profile.kind === 'https_spiffe' && moved.profile.endpointSpiffeId.toString(), SPIFFE.endpointSpiffeId, 'the endpoint ID is kept')
  t.equal(store.relationships.update(B, { profile: 'https_web' }).profile.kind, 'https_web', 'to https_web: the endpoint ID goes')
  t.equal(thrown(() => store.relationships.update(B, { profile: 'https_spiffe' }))?.code, 'ERR_RELATIONSHIP_INVALID', 'back to https_spiffe needs an ID')
  t.equal(thrown(() => store.relationships.update('nowhere.example', {}))?.code, 'ERR_RELATIONSHIP_NOT_FOUND')

  const deleted = store.relationships.delete(B)
  t.equal(deleted.relationship.trustDomain.name, B)
  t.equal(deleted.bundle?.trustDomain.name, B, 'its bundle is deleted with it')
  t.equal(store.findFederatedBundle(B), undefined)
  t.equal(thrown(() => store.relationships.delete(B))?.code, 'ERR_RELATIONSHIP_NOT_FOUND')

  store.relationships.create(WEB, { source: 'config' })
  t.equal(thrown(() => store.relationships.update(WEB.trustDomain, { bundleEndpointUrl: 'https://x.example/' }))?.code, 'ERR_RELATIONSHIP_FROM_CONFIG')
  t.match(thrown(() => store.relationships.delete(WEB.trustDomain))?.message, /defined in the agent's config file/)
  t.equal(store.relationships.delete(WEB.trustDomain, { from: 'config' }).relationship.source, 'config', 'the config file may')
})

void t.test('relationships – syncFromConfig: the file\'s become config ones, replace run-time ones, leave with their bundles; a bootstrap bundle never overwrites a held one', async t => {
  const store = openStore(t, tmpDataDir(t))
  const firstPem = pemOf(B)
  store.relationships.create(SPIFFE)
  store.relationships.syncFromConfig([{ ...SPIFFE, bundleEndpointUrl: 'https://b.example/', bundle: { format: 'pem', bundle: firstPem } }, WEB])
  t.same(store.relationships.list().map(r => [r.trustDomain.name, r.bundleEndpointUrl, r.source]),
    [[B, 'https://b.example/', 'config'], ['plant-c.example', WEB.bundleEndpointUrl, 'config']], 'the file wins')
  const held = store.findFederatedBundle(B)
  store.relationships.syncFromConfig([{ ...SPIFFE, bundleEndpointUrl: 'https://b.example/', bundle: { format: 'pem', bundle: pemOf(B) } }])
  t.equal(store.findFederatedBundle(B), held, 'the held bundle is kept: a fetched one is newer than the file\'s')
  t.same(store.relationships.list().map(r => r.trustDomain.name), [B], 'the one the file no longer lists is gone')
  const revision = store.revision
  store.relationships.syncFromConfig([{ ...SPIFFE, bundleEndpointUrl: 'https://b.example/' }])
  t.equal(store.revision, revision, 'an unchanged file writes nothing')
  t.equal(thrown(() => store.relationships.syncFromConfig([SPIFFE, { ...WEB, bundleEndpointUrl: 'ftp://x' }]))?.code, 'ERR_RELATIONSHIP_INVALID')
  t.equal(store.relationships.find(B)?.bundleEndpointUrl, 'https://b.example/', 'a bad file changes nothing')
  store.relationships.syncFromConfig([])
  t.equal(store.findFederatedBundle(B), undefined, 'a relationship removed from the file takes its bundle along')
})

void t.test('relationships – a store of version 5 gains the table at open (schema 6), its data untouched', async t => {
  const { dataDir, db } = storeAtVersion(t, 5)
  db.close()
  const store = openStore(t, dataDir)
  store.relationships.create(WEB)
  store.close()
  const file = new Database(join(dataDir, STORE_FILE_NAME), { readonly: true })
  t.teardown(() => file.close())
  t.equal(schemaVersion(file), LATEST_SCHEMA_VERSION)
  t.equal(file.prepare('SELECT count(*) FROM federation_relationships').pluck().get(), 1)
  t.throws(() => new Database(join(dataDir, STORE_FILE_NAME)).prepare("INSERT INTO federation_relationships VALUES ('x.example', 'https://x/', 'https_spiffe', NULL, 'api', 0, 0)").run(),
    /CHECK constraint failed/, 'https_spiffe without an endpoint ID cannot be stored even by hand')
})
