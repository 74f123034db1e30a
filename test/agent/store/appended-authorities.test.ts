import t from 'tap'
import Database from 'better-sqlite3'
import { generateKeyPairSync } from 'node:crypto'
import { join } from 'node:path'
import pino from 'pino'
import { createTestCa } from '../../../certs-test'
import type { TestCa } from '../../../certs-test'
import { STORE_FILE_NAME } from '../../../agent/store'
import type { JwtAuthorityInput, StoreChange } from '../../../agent/store'
import { LATEST_SCHEMA_VERSION, MIGRATIONS, schemaVersion } from '../../../agent/store/schema'
import { JwtBundle } from '../../../spiffe/jwt-bundle'
import { SpiffeBundle } from '../../../spiffe/spiffe-bundle'
import { X509Bundle } from '../../../spiffe/x509-bundle'
import { thrown } from '../../helpers/errors'
import { TRUST_DOMAIN, insertEntryV3, manualClock, openStore, storeAtVersion, tmpDataDir } from './fixtures/store'

// The authorities appended to our own trust domain's bundle (SPIRE's AppendBundle): kept in the store, merged as
// SPIRE's datastore merges them, served beside the CA's until they expire, removable one by one, durable.

const NOW = '2030-01-01T00:00:00Z'
const unix = (iso: string): number => Date.parse(iso) / 1000
const spki = (): Buffer => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' })
const roots = (bundle: SpiffeBundle): string[] => bundle.x509.authorities.map(cert => cert.raw.toString('base64'))

/** The CA's bundle as the store gets it from the CA: one root, one JWT key, sequence 3. */
function caBundle (): SpiffeBundle {
  const jwt = new JwtBundle(TRUST_DOMAIN)
  jwt.addKey('ca-key', generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }))
  const x509 = new X509Bundle(TRUST_DOMAIN, [createTestCa(TRUST_DOMAIN.name, { now: new Date(NOW) }).certDer])
  return new SpiffeBundle(TRUST_DOMAIN, { x509, jwt, sequence: 3, refreshHintSeconds: 300 })
}

/** A data directory whose store (closed) holds `jwt` and a second root appended to `ca`, on a clock at NOW. */
function storeWithSecondRoot (t: tap.Test, ca: SpiffeBundle, jwt: JwtAuthorityInput[] = []): { dataDir: string, clock: () => Date, second: TestCa, before: SpiffeBundle } {
  const dataDir = tmpDataDir(t)
  const clock = manualClock(NOW).now
  const second = createTestCa(TRUST_DOMAIN.name, { now: new Date(NOW) })
  const store = openStore(t, dataDir, { clock })
  store.appendAuthorities({ x509: [second.certDer], jwt }, ca)
  const before = store.ownBundle(ca)
  store.close()
  return { dataDir, clock, second, before }
}

void t.test('appended authorities – append X.509 and JWT authorities: served beside the CA\'s, the sequence grows, the feed hears it', async t => {
  const clock = manualClock(NOW)
  const store = openStore(t, tmpDataDir(t), { clock: clock.now })
  const ca = caBundle()
  t.equal(store.ownBundle(ca), ca, 'nothing appended: our bundle is the CA\'s')
  const changes: StoreChange[] = []
  store.onChange(change => changes.push(change))

  const second = createTestCa(TRUST_DOMAIN.name, { now: new Date(NOW), name: 'second root' })
  const key = spki()
  const result = store.appendAuthorities({ x509: [second.certDer], jwt: [{ keyId: 'appended-key', publicKey: key, expiresAt: unix('2031-01-01T00:00:00Z') }] }, ca)
  t.same(result.added.map(a => a.kind), ['jwt', 'x509'], 'JWT authorities first, as SPIRE reads them')
  t.same(result.present, [])
  t.match(result.appended, { revision: 1, authorities: [{ kind: 'jwt', keyId: 'appended-key', expiresAt: unix('2031-01-01T00:00:00Z'), appendedAt: unix(NOW) }, { kind: 'x509', subject: /CN=second root/ }] })
  t.match(changes, [{ kind: 'appended-authorities-changed', bundle: { trustDomain: TRUST_DOMAIN, revision: 1 }, storeRevision: 1 }], 'one change on the feed')

  const own = store.ownBundle(ca)
  t.same(roots(own), [...roots(ca), second.certDer.toString('base64')], 'the CA\'s root, then the appended one')
  t.same([...own.jwt.keys.keys()], ['ca-key', 'appended-key'])
  t.equal(own.sequence, 4, 'the CA\'s sequence plus the appended authorities\' revision')
  t.equal(own.refreshHintSeconds, 300)
  t.equal(store.ownBundle(ca), own, 'composed once, until something changes')

  const again = store.appendAuthorities({ x509: [second.certDer, ca.x509.authorities[0].raw], jwt: [{ keyId: 'appended-key', publicKey: key }] }, ca)
  t.same(again.added, [], 'an authority already in the bundle (appended, or the CA\'s own) is not added again')
  t.equal(again.present.length, 3)
  t.equal(again.appended.revision, 1, 'so nothing changed')
  t.equal(changes.length, 1, 'and nothing was announced')
  t.equal(store.ownBundle(ca).sequence, 4)

  const twice = createTestCa(TRUST_DOMAIN.name, { now: new Date(NOW) })
  const repeated = store.appendAuthorities({ x509: [Buffer.concat([twice.certDer, twice.certDer])] }, ca)
  t.same([repeated.added.length, repeated.present.length], [1, 1], 'concatenated DER is read as SPIRE reads it, each certificate once')
  t.equal(store.ownBundle(ca).sequence, 5)
})

void t.test('appended authorities – what is refused, with a stable code and SPIRE\'s words, changes nothing', async t => {
  const clock = manualClock(NOW)
  const store = openStore(t, tmpDataDir(t), { clock: clock.now })
  const ca = caBundle()
  const now = new Date(NOW)
  const leaf = createTestCa(TRUST_DOMAIN.name, { now }).issueSvid('spiffe://example.org/app', { now }).leaf.raw
  const expired = createTestCa(TRUST_DOMAIN.name, { now: new Date('2029-01-01T00:00:00Z'), notAfter: new Date('2029-06-01T00:00:00Z') }).certDer
  const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'der' })
  const cases: Array<[string, Parameters<typeof store.appendAuthorities>[0], string, RegExp]> = [
    ['nothing', {}, 'ERR_AUTHORITY_INVALID', /^no authorities to append$/],
    ['empty lists', { x509: [], jwt: [] }, 'ERR_AUTHORITY_INVALID', /^no authorities to append$/],
    ['bad DER', { x509: [Buffer.from('not a certificate')] }, 'ERR_AUTHORITY_INVALID', /^failed to convert X\.509 authority: /],
    ['a leaf', { x509: [leaf] }, 'ERR_AUTHORITY_INVALID', /^failed to convert X\.509 authority: not a CA certificate/],
    ['an expired root', { x509: [expired] }, 'ERR_AUTHORITY_INVALID', /^failed to convert X\.509 authority: it expired at 2029-06-01T00:00:00\.000Z/],
    ['a bad key', { jwt: [{ keyId: 'k', publicKey: Buffer.from('junk') }] }, 'ERR_AUTHORITY_INVALID', /^failed to convert JWT authority: /],
    ['no key ID', { jwt: [{ keyId: '', publicKey: spki() }] }, 'ERR_AUTHORITY_INVALID', /^failed to convert JWT authority: missing key ID$/],
    ['a short RSA key', { jwt: [{ keyId: 'k', publicKey: rsa1024 }] }, 'ERR_AUTHORITY_INVALID', /^failed to convert JWT authority: .*2048/],
    ['an expired key', { jwt: [{ keyId: 'k', publicKey: spki(), expiresAt: unix(NOW) }] }, 'ERR_AUTHORITY_INVALID', /^failed to convert JWT authority: it expired/],
    ['a bad expiry', { jwt: [{ keyId: 'k', publicKey: spki(), expiresAt: -1 }] }, 'ERR_AUTHORITY_INVALID', /unix seconds or 0/],
    ['the CA\'s key ID with another key', { jwt: [{ keyId: 'ca-key', publicKey: spki() }] }, 'ERR_AUTHORITY_KEY_ID_IN_USE', /key ID "ca-key" is already in the bundle \(the CA's\) with another key/],
    ['one key ID twice', { jwt: [{ keyId: 'k', publicKey: spki() }, { keyId: 'k', publicKey: spki() }] }, 'ERR_AUTHORITY_KEY_ID_IN_USE', /key ID "k"/],
    ['a JWT failure first', { x509: [Buffer.from('x')], jwt: [{ keyId: '', publicKey: spki() }] }, 'ERR_AUTHORITY_INVALID', /^failed to convert JWT authority/]
  ]
  for (const [what, input, code, message] of cases) t.match(thrown(() => store.appendAuthorities(input, ca)), { code, message }, what)
  t.same([store.appendedAuthorities().authorities, store.appendedAuthorities().revision, store.revision], [[], 0, 0], 'nothing stored, nothing changed')
})

void t.test('appended authorities – an expired one is no longer served; removing one, by fingerprint or key ID, never the CA\'s', async t => {
  const clock = manualClock(NOW)
  const store = openStore(t, tmpDataDir(t), { clock: clock.now })
  const ca = caBundle()
  const shortLived = createTestCa(TRUST_DOMAIN.name, { now: new Date(NOW), notAfter: new Date('2030-01-02T00:00:00Z') })
  const { appended } = store.appendAuthorities({ x509: [shortLived.certDer], jwt: [{ keyId: 'k1', publicKey: spki(), expiresAt: unix('2030-01-03T00:00:00Z') }, { keyId: 'k2', publicKey: spki() }] }, ca)
  t.equal(roots(store.ownBundle(ca)).length, 2)
  clock.set('2030-01-02T00:00:00Z')
  t.same(roots(store.ownBundle(ca)), roots(ca), 'an X.509 authority is not served from its notAfter on')
  t.same([...store.ownBundle(ca).jwt.keys.keys()], ['ca-key', 'k1', 'k2'])
  clock.set('2030-01-03T00:00:01Z')
  t.same([...store.ownBundle(ca).jwt.keys.keys()], ['ca-key', 'k2'], 'nor a JWT key after its expiry (0: none)')
  t.equal(store.appendedAuthorities().authorities.length, 3, 'both are still held, until removed')

  t.equal(appended.authorities.length, 3)
  const removed = store.removeAppendedAuthority({ sha256: shortLived.cert.fingerprint256 }, ca)
  t.match(removed, { removed: { kind: 'x509' }, appended: { revision: 2 } }, 'by the SHA-256 fingerprint as openssl and Node print it')
  t.match(store.removeAppendedAuthority({ keyId: 'k2' }, ca), { removed: { kind: 'jwt', keyId: 'k2' }, appended: { revision: 3 } }, 'by key ID')
  t.same([...store.ownBundle(ca).jwt.keys.keys()], ['ca-key'])
  t.equal(store.ownBundle(ca).sequence, 6, 'each removal is a change of the bundle\'s sequence')

  const caRoot = ca.x509.authorities[0].fingerprint256.replace(/:/g, '').toLowerCase()
  t.match(thrown(() => store.removeAppendedAuthority({ sha256: caRoot }, ca)), { code: 'ERR_AUTHORITY_OF_CA', message: /is the CA's own, not an appended one/ })
  t.match(thrown(() => store.removeAppendedAuthority({ keyId: 'ca-key' }, ca)), { code: 'ERR_AUTHORITY_OF_CA' })
  t.match(thrown(() => store.removeAppendedAuthority({ keyId: 'k2' }, ca)), { code: 'ERR_AUTHORITY_NOT_FOUND', message: /no appended JWT authority has the key ID "k2"/ })
  t.match(thrown(() => store.removeAppendedAuthority({ sha256: 'ab'.repeat(32) }, ca)), { code: 'ERR_AUTHORITY_NOT_FOUND' })
  t.match(thrown(() => store.removeAppendedAuthority({ sha256: 'xyz' }, ca)), { code: 'ERR_AUTHORITY_INVALID', message: /not a SHA-256 fingerprint/ })
  t.match(thrown(() => store.removeAppendedAuthority({ keyId: '' }, ca)), { code: 'ERR_AUTHORITY_INVALID' })
})

void t.test('appended authorities – durable: a reopened store holds them, their revision and the bundle\'s sequence', async t => {
  const ca = caBundle()
  const { dataDir, clock, second, before } = storeWithSecondRoot(t, ca, [{ keyId: 'k', publicKey: spki(), expiresAt: unix('2031-01-01T00:00:00Z') }])
  const reopened = openStore(t, dataDir, { clock })
  t.same(reopened.appendedAuthorities().authorities.map(a => [a.kind, a.expiresAt, a.appendedAt]),
    [['jwt', unix('2031-01-01T00:00:00Z'), unix(NOW)], ['x509', Date.parse(second.cert.validTo) / 1000, unix(NOW)]])
  const after = reopened.ownBundle(ca)
  t.same([roots(after), [...after.jwt.keys.keys()], after.sequence], [roots(before), [...before.jwt.keys.keys()], before.sequence])
  t.equal(reopened.revision, 1)
})

void t.test('appended authorities – a version-3 store upgrades in place: entries kept, nothing appended, appending works', async t => {
  const { dataDir, db: v3 } = storeAtVersion(t, 3)
  insertEntryV3(v3, 'entry-from-v3', 'spiffe://example.org/old', null, { type: 'unix', value: 'uid:7' })
  v3.prepare("UPDATE meta SET value = '1' WHERE key = 'store_revision'").run()
  const agentNodeId = (v3.prepare("SELECT value FROM meta WHERE key = 'agent_node_id'").get() as { value: string }).value
  t.equal(schemaVersion(v3), 3)
  v3.close()

  const clock = manualClock(NOW)
  const store = openStore(t, dataDir, { clock: clock.now })
  t.equal(store.getEntry('entry-from-v3')?.spiffeId, 'spiffe://example.org/old', 'the entry is kept')
  t.equal(store.agentId, `spiffe://example.org/spire/agent/chaperone/${agentNodeId}`, 'and the agent ID')
  t.same(store.appendedAuthorities(), { trustDomain: TRUST_DOMAIN, authorities: [], revision: 0 }, 'nothing appended')
  const ca = caBundle()
  t.equal(store.ownBundle(ca), ca)
  store.appendAuthorities({ x509: [createTestCa(TRUST_DOMAIN.name, { now: new Date(NOW) }).certDer] }, ca)
  t.equal(store.revision, 2, 'the store revision goes on')
  store.close()

  const db = new Database(join(dataDir, STORE_FILE_NAME), { readonly: true })
  t.teardown(() => db.close())
  t.equal(schemaVersion(db), LATEST_SCHEMA_VERSION)
  t.same(db.prepare('SELECT version FROM schema_migrations WHERE applied_at = ?').all(unix(NOW)), MIGRATIONS.slice(3).map(({ version }) => ({ version })), 'version 4 and later applied at the upgrade')
  t.same(db.prepare("SELECT value FROM meta WHERE key = 'appended_authorities_revision'").get(), { value: '1' })
  t.equal(db.prepare('SELECT count(*) AS n FROM appended_authorities').pluck().get(), 1)
  t.equal(db.pragma('integrity_check', { simple: true }), 'ok')
})

void t.test('appended authorities – a stored one that no longer reads is logged and not served; appending it again repairs it', async t => {
  const ca = caBundle()
  const { dataDir, clock, second } = storeWithSecondRoot(t, ca)
  const db = new Database(join(dataDir, STORE_FILE_NAME))
  db.prepare("UPDATE appended_authorities SET der = x'3000'").run()
  db.close()
  const lines: string[] = []
  const reopened = openStore(t, dataDir, { clock, logger: pino({}, { write: (line: string) => { lines.push(line) } }) })
  t.same(reopened.appendedAuthorities().authorities, [])
  t.match(lines.map(line => JSON.parse(line) as object), [{ level: 50, kind: 'x509', msg: /cannot be read; it is not served until it is appended again/ }])
  t.same(reopened.appendAuthorities({ x509: [second.certDer] }, ca).added.length, 1)
  t.equal(reopened.ownBundle(ca).x509.size, 2, 'served again')
})
