import t from 'tap'
import Database from 'better-sqlite3'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import pino from 'pino'
import { createTestCa } from '../../../certs-test'
import { STORE_FILE_NAME } from '../../../agent/store'
import type { AttestationInput, StoreChange } from '../../../agent/store'
import { LATEST_SCHEMA_VERSION, MIGRATIONS, schemaVersion } from '../../../agent/store/schema'
import { thrown } from '../../helpers/errors'
import { foreignTrustDomain } from './fixtures/foreign-trust-domain'
import { TRUST_DOMAIN, changeSummary, insertEntryV3, manualClock, openStore, storeAtVersion, tmpDataDir } from './fixtures/store'

// The agents attested to this agent in its upstream role, kept as SPIRE's server keeps its attested nodes
// (pkg/server/api/agent/v1/service.go AttestAgent, BanAgent, DeleteAgent) and checked as its agent authorizer checks
// an agent's SVID (pkg/server/endpoints/middleware.go AgentAuthorizer).

const NOW = '2030-01-01T00:00:00Z'
const unix = (iso: string): number => Date.parse(iso) / 1000
const SN1 = 'spiffe://example.org/spire/agent/x509pop/5f3a0c1d2e'
const SN2 = 'spiffe://example.org/spire/agent/x509pop/77aa01'

function attestation (overrides: Partial<AttestationInput> = {}): AttestationInput {
  return {
    spiffeId: SN1,
    attestationType: 'x509pop',
    selectors: ['x509pop:subject:cn:SN-1', { type: 'x509pop', value: 'ca:fingerprint:ab12' }, 'x509pop:subject:cn:SN-1'],
    serialNumber: 0x1f2e3d4c5b6a7980n,
    expiresAt: unix('2030-01-01T01:00:00Z'),
    canReattest: true,
    ...overrides
  }
}

void t.test('attested agents – an attestation is recorded with every field; attesting again replaces it; both survive a reopen', async t => {
  const dataDir = tmpDataDir(t)
  const clock = manualClock(NOW)
  let store = openStore(t, dataDir, { clock: clock.now })
  const changes: StoreChange[] = []
  store.onChange(change => changes.push(change))
  const first = store.agents.record(attestation())
  t.same(first, {
    spiffeId: SN1,
    attestationType: 'x509pop',
    selectors: [{ type: 'x509pop', value: 'ca:fingerprint:ab12' }, { type: 'x509pop', value: 'subject:cn:SN-1' }],
    serialNumber: '2246800662264969600',
    expiresAt: unix('2030-01-01T01:00:00Z'),
    canReattest: true,
    banned: false,
    attestedAt: unix(NOW)
  }, 'selectors de-duplicated and sorted, the serial in decimal as SPIRE shows it')
  t.ok(Object.isFrozen(first) && Object.isFrozen(first.selectors), 'frozen, like entries')
  t.same(store.agents.get(SN1), first, 'read back')
  store.agents.record(attestation({ spiffeId: SN2, selectors: [], canReattest: false }))

  clock.set('2030-01-01T00:30:00Z')
  const again = store.agents.record(attestation({ selectors: ['x509pop:subject:cn:SN-1b'], serialNumber: 99n, expiresAt: unix('2030-01-01T01:30:00Z') }))
  t.same([again.selectors, again.serialNumber, again.expiresAt, again.attestedAt],
    [[{ type: 'x509pop', value: 'subject:cn:SN-1b' }], '99', unix('2030-01-01T01:30:00Z'), unix('2030-01-01T00:30:00Z')], 'every field replaced, selectors too')
  t.same(store.agents.list().map(agent => agent.spiffeId), [SN1, SN2].sort(), 'one record per agent, by SPIFFE ID')
  t.same(changes.map(changeSummary), [`agent-attested ${SN1} @1`, `agent-attested ${SN2} @2`, `agent-attested ${SN1} @3`], 'each a change on the feed')
  t.equal((changes[2] as { agent: unknown }).agent, again, 'carrying the agent recorded')
  store.close()

  store = openStore(t, dataDir, { clock: clock.now })
  t.same(store.agents.list(), [again, { ...first, spiffeId: SN2, selectors: [], canReattest: false }], 'the same after a reopen')
  t.equal(store.revision, 3)
})

void t.test('attested agents – the SVID check answers as SPIRE\'s agent authorizer, reason and words, in its order', async t => {
  const clock = manualClock(NOW)
  const store = openStore(t, tmpDataDir(t), { clock: clock.now })
  const expiresAt = unix('2030-01-01T01:00:00Z')
  const svid = { serialNumber: 0x1f2e3d4c5b6a7980n, expiresAt }
  t.same(store.agents.checkSvid(SN1, svid), { ok: false, reason: 'AGENT_NOT_ATTESTED', message: `agent "${SN1}" is not attested` })
  const agent = store.agents.record(attestation())
  t.same(store.agents.checkSvid(SN1, svid), { ok: true, agent }, 'the SVID last issued to it')
  t.match(store.agents.checkSvid(SN2, svid), { ok: false, reason: 'AGENT_NOT_ATTESTED' }, 'the same serial for another agent')

  store.agents.record(attestation({ serialNumber: 7n }))
  t.same(store.agents.checkSvid(SN1, svid), { ok: false, reason: 'AGENT_NOT_ACTIVE', message: `agent "${SN1}" expected to have serial number "7"; has "2246800662264969600"` },
    'after attesting again, the older SVID is no longer active, though unexpired')
  t.equal(store.agents.checkSvid(SN1, { serialNumber: 7n, expiresAt }).ok, true)

  clock.set('2030-01-01T01:00:00Z')
  t.equal(store.agents.checkSvid(SN1, { serialNumber: 7n, expiresAt }).ok, true, 'valid at its notAfter')
  clock.set('2030-01-01T01:00:00.001Z')
  t.same(store.agents.checkSvid(SN1, { serialNumber: 7n, expiresAt }), { ok: false, reason: 'AGENT_EXPIRED', message: `agent "${SN1}" SVID is expired` }, 'not a millisecond after')
  t.match(store.agents.checkSvid(SN2, { serialNumber: 7n, expiresAt }), { reason: 'AGENT_EXPIRED' }, 'expiry is checked first, as SPIRE does')
  t.match(store.agents.checkSvid(SN1, { serialNumber: 7n, expiresAt: Number.NaN }), { reason: 'AGENT_EXPIRED' }, 'an expiry that is not a number fails closed')
  clock.set(NOW)
  store.agents.ban(SN1)
  t.same(store.agents.checkSvid(SN1, { serialNumber: 7n, expiresAt }), { ok: false, reason: 'AGENT_BANNED', message: `agent "${SN1}" is banned` })
})

void t.test('attested agents – a ban keeps the agent, empties its serial, refuses its SVID and its next attestation until it is evicted', async t => {
  const store = openStore(t, tmpDataDir(t), { clock: manualClock(NOW).now })
  const agent = store.agents.record(attestation())
  const changes: StoreChange[] = []
  store.onChange(change => changes.push(change))
  const banned = store.agents.ban(SN1)
  t.same(banned, { ...agent, serialNumber: '', banned: true }, 'SPIRE marks a ban by emptying the serial; the rest is kept')
  t.same(store.agents.get(SN1), banned)
  t.same(store.agents.ban(SN1), banned, 'banning again changes nothing')
  t.same(changes.map(changeSummary), [`agent-banned ${SN1} @2`], 'and announces nothing')

  const err = thrown(() => store.agents.record(attestation({ serialNumber: 8n })))
  t.equal(err.code, 'ERR_AGENT_BANNED')
  t.match(err.message, `failed to attest: agent "${SN1}" is banned; it may attest again once evicted`)
  t.same(store.agents.get(SN1), banned, 'the refused attestation changed nothing')
  t.equal(store.revision, 2)

  t.same(store.agents.evict(SN1), banned, 'evicting returns the agent as it was')
  t.equal(store.agents.get(SN1), undefined)
  t.same(store.agents.record(attestation({ serialNumber: 8n })).serialNumber, '8', 'once evicted it may attest again')
  t.same(changes.map(change => change.kind), ['agent-banned', 'agent-evicted', 'agent-attested'])
})

void t.test('attested agents – evicting deletes the agent and no entry; it may attest again', async t => {
  const store = openStore(t, tmpDataDir(t))
  const agent = store.agents.record(attestation())
  const entry = store.createEntry({ spiffeId: 'spiffe://example.org/device', parentId: SN1, selectors: ['unix:uid:1'] })
  const heard: StoreChange[] = []
  store.onChange(change => heard.push(change))
  t.same(store.agents.evict(SN1), agent)
  t.same(heard, [{ kind: 'agent-evicted', agent, storeRevision: 3 }], 'the feed hears the agent evicted')
  t.same([store.agents.get(SN1), store.agents.list()], [undefined, []])
  t.same(store.getEntry(entry.id), entry, 'entries parented on it are kept (SPIRE\'s DeleteAgent keeps them)')
  t.same(store.entriesAuthorizedTo(SN1, []), [entry], 'and are its again when it comes back')
  t.equal(store.agents.checkSvid(SN1, { serialNumber: 0x1f2e3d4c5b6a7980n, expiresAt: unix('2099-01-01T00:00:00Z') }).ok, false, 'its SVID is refused')
  t.equal(store.agents.record(attestation()).spiffeId, SN1)
})

void t.test('attested agents – unknown agents are ERR_AGENT_NOT_FOUND, other IDs ERR_AGENT_INVALID; nothing changes', async t => {
  const store = openStore(t, tmpDataDir(t))
  store.agents.record(attestation())
  for (const act of ['evict', 'ban'] as const) {
    const err = thrown(() => store.agents[act](SN2))
    t.equal(err.code, 'ERR_AGENT_NOT_FOUND', act)
    t.match(err.message, `agent not found: no agent "${SN2}" has attested`)
    t.match(thrown(() => store.agents[act]('spiffe://other.org/spire/agent/x509pop/1')),
      { code: 'ERR_AGENT_INVALID', message: 'invalid agent ID: "spiffe://other.org/spire/agent/x509pop/1" is not a member of trust domain "example.org"' })
    t.match(thrown(() => store.agents[act]('spiffe://example.org/workload')), { code: 'ERR_AGENT_INVALID', message: /is not an agent in trust domain "example.org"; path is not in the agent namespace/ })
    t.match(thrown(() => store.agents[act]('not an id')), { code: 'ERR_AGENT_INVALID', message: /^invalid agent ID: invalid SPIFFE ID/ })
    t.equal(thrown(() => store.agents[act](42 as unknown as string)).code, 'ERR_AGENT_INVALID')
  }
  t.equal(store.agents.get(SN2), undefined)
  t.equal(store.agents.get(undefined as unknown as string), undefined, 'a non-string finds nothing')
  t.equal(store.revision, 1, 'nothing was written')
})

void t.test('attested agents – an attestation that breaks a rule is refused with a stable code, and nothing is stored', async t => {
  const store = openStore(t, tmpDataDir(t))
  const cases: Array<[string, Partial<AttestationInput>, string, RegExp]> = [
    ['another trust domain', { spiffeId: 'spiffe://other.org/spire/agent/x509pop/1' }, 'ERR_AGENT_INVALID', /is not a member of trust domain "example.org"/],
    ['outside the attestor\'s namespace', { spiffeId: 'spiffe://example.org/spire/agent/tpm_devid/1' }, 'ERR_AGENT_INVALID', /is not in the agent namespace for attestor "x509pop"/],
    ['the server\'s ID', { spiffeId: 'spiffe://example.org/spire/server' }, 'ERR_AGENT_INVALID', /agent namespace/],
    ['a workload ID', { spiffeId: 'spiffe://example.org/x509pop/1' }, 'ERR_AGENT_INVALID', /agent namespace/],
    ['no attestation type', { attestationType: '' }, 'ERR_AGENT_INVALID', /attestationType must be a node attestor's name/],
    ['a type with a slash', { attestationType: 'x509pop/x' }, 'ERR_AGENT_INVALID', /attestationType/],
    ['selectors not a list', { selectors: 'x509pop:a:b' as never }, 'ERR_AGENT_INVALID', /selectors must be a list/],
    ['a selector without a value', { selectors: ['x509pop'] }, 'ERR_SELECTOR_INVALID', /needs a type and a value/],
    ['a hexadecimal serial string', { serialNumber: '1F2E' as never }, 'ERR_AGENT_INVALID', /serialNumber must be .* a positive bigint of at most 20 octets; got string/],
    ['serial 0', { serialNumber: 0n }, 'ERR_AGENT_INVALID', /serialNumber/],
    ['a serial over 20 octets', { serialNumber: 2n ** 160n }, 'ERR_AGENT_INVALID', /serialNumber/],
    ['expiry in milliseconds', { expiresAt: Date.parse(NOW) }, 'ERR_AGENT_INVALID', /expiresAt must be the SVID's notAfter in whole unix seconds/],
    ['a fractional expiry', { expiresAt: 1.5 }, 'ERR_AGENT_INVALID', /expiresAt/],
    ['canReattest missing', { canReattest: undefined }, 'ERR_AGENT_INVALID', /canReattest must be true or false/]
  ]
  for (const [what, overrides, code, message] of cases) t.match(thrown(() => store.agents.record(attestation(overrides))), { code, message }, what)
  t.equal(thrown(() => store.agents.record(null as never)).code, 'ERR_AGENT_INVALID', 'not an object')
  t.equal(store.agents.record(attestation({ serialNumber: 2n ** 160n - 1n })).serialNumber, (2n ** 160n - 1n).toString(), 'a 20-octet serial is fine')
  t.equal(store.revision, 1, 'only that one was stored')
})

void t.test('attested agents – a stored agent whose selectors no longer read is logged and gets no alias entry; attesting again repairs it', async t => {
  const dataDir = tmpDataDir(t)
  const store = openStore(t, dataDir)
  store.agents.record(attestation())
  store.agents.record(attestation({ spiffeId: SN2 }))
  store.agents.ban(SN2)
  store.close()
  const db = new Database(join(dataDir, STORE_FILE_NAME))
  db.prepare("UPDATE attested_agents SET selectors = '{\"x\": 1}'").run()
  t.throws(() => db.prepare("UPDATE attested_agents SET serial_number = '5' WHERE banned = 1").run(), /CHECK constraint failed/, 'the table keeps a ban and its empty serial together')
  db.close()

  const lines: string[] = []
  const reopened = openStore(t, dataDir, { logger: pino({}, { write: (line: string) => { lines.push(line) } }) })
  const damaged = reopened.agents.get(SN1)
  t.same(damaged?.selectors, [], 'read with no selectors')
  t.match(lines.map(line => JSON.parse(line) as object), [{ level: 50, agentId: SN1, msg: /selectors of this attested agent cannot be read; it is given no entry through a node alias/ }])
  t.equal(reopened.agents.checkSvid(SN1, { serialNumber: 0x1f2e3d4c5b6a7980n, expiresAt: unix('2099-01-01T00:00:00Z') }).ok, true, 'its SVID still counts')
  t.match(reopened.agents.list(), [{ spiffeId: SN1 }, { spiffeId: SN2, banned: true, selectors: [] }], 'listing still works, and the ban holds')
  t.equal(thrown(() => reopened.agents.record(attestation({ spiffeId: SN2 }))).code, 'ERR_AGENT_BANNED')
  t.equal(reopened.agents.record(attestation()).selectors.length, 2, 'attesting again rewrites the selectors')
  t.equal(reopened.agents.get(SN1)?.selectors.length, 2)
})

void t.test('attested agents – a version-4 store upgrades in place: entries, bundles, authorities and revision kept, agents recordable', async t => {
  // A store exactly as a build that knew only versions 1–4 left it, one row in each of its tables.
  const { dataDir, db: v4 } = storeAtVersion(t, 4)
  insertEntryV3(v4, 'entry-from-v4', 'spiffe://example.org/device', SN1, { type: 'x509pop', value: 'subject:cn:SN-1' }, true)
  const other = foreignTrustDomain('other.example')
  v4.prepare("INSERT INTO federated_bundles (trust_domain, bundle, sequence, updated_at) VALUES ('other.example', ?, NULL, 1800000000)").run(other.spiffeJson())
  const root = createTestCa(TRUST_DOMAIN.name, { now: new Date(NOW) })
  v4.prepare("INSERT INTO appended_authorities (kind, id, der, expires_at, appended_at) VALUES ('x509', ?, ?, ?, 1800000000)")
    .run(createHash('sha256').update(root.certDer).digest('hex'), root.certDer, unix(root.cert.validTo))
  v4.prepare("UPDATE meta SET value = '3' WHERE key = 'store_revision'").run()
  v4.prepare("UPDATE meta SET value = '1' WHERE key = 'appended_authorities_revision'").run()
  const agentNodeId = v4.prepare("SELECT value FROM meta WHERE key = 'agent_node_id'").pluck().get() as string
  t.equal(schemaVersion(v4), 4)
  v4.close()

  const clock = manualClock(NOW)
  const store = openStore(t, dataDir, { clock: clock.now })
  t.match(store.getEntry('entry-from-v4'), { spiffeId: 'spiffe://example.org/device', parentId: SN1, downstream: true }, 'the entry is kept')
  t.same(store.listFederatedBundles().map(held => held.trustDomain.name), ['other.example'], 'the federated bundle')
  t.match(store.appendedAuthorities(), { revision: 1, authorities: [{ kind: 'x509', der: root.certDer }] }, 'the appended authority')
  t.equal(store.agentId, `spiffe://example.org/spire/agent/chaperone/${agentNodeId}`, 'the agent ID')
  t.equal(store.revision, 3, 'the revision')
  t.same(store.agents.list(), [], 'no agent yet')
  store.agents.record(attestation())
  t.equal(store.revision, 4, 'the store revision goes on')
  t.same(store.entriesAuthorizedTo(SN1, []).map(entry => entry.id), ['entry-from-v4'], 'the old entry is authorized to the agent now attested')
  store.close()

  const db = new Database(join(dataDir, STORE_FILE_NAME), { readonly: true })
  t.teardown(() => db.close())
  t.equal(schemaVersion(db), LATEST_SCHEMA_VERSION)
  t.same(db.prepare('SELECT version FROM schema_migrations WHERE applied_at = ?').all(unix(NOW)), MIGRATIONS.slice(4).map(({ version }) => ({ version })), 'version 5 and later applied at the upgrade')
  t.equal(db.prepare('SELECT count(*) FROM attested_agents').pluck().get(), 1)
  t.same(db.prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'entries' AND sql IS NOT NULL ORDER BY name").pluck().all(),
    ['entries_by_parent', 'entries_identity'], 'entries gained their index by parent ID')
  t.equal(db.pragma('integrity_check', { simple: true }), 'ok')
})
