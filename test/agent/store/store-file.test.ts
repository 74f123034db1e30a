import t from 'tap'
import Database from 'better-sqlite3'
import { randomBytes } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { RegistrationStore, STORE_FILE_NAME } from '../../../agent/store'
import type { StoreErrorCode } from '../../../agent/store'
import { CHAPERONE_APPLICATION_ID, LATEST_SCHEMA_VERSION, MIGRATIONS } from '../../../agent/store/schema'
import { thrown } from '../../helpers/errors'
import { TRUST_DOMAIN, manualClock, openStore, sha256File, tmpDataDir } from './fixtures/store'

const modeOf = (path: string): number => statSync(path).mode & 0o7777

/** A data directory holding a store file made by `make`, and the path of that file. */
function dataDirWith (t: tap.Test, make: (path: string) => void): { dataDir: string, path: string } {
  const dataDir = tmpDataDir(t)
  mkdirSync(dataDir, { mode: 0o700 })
  const path = join(dataDir, STORE_FILE_NAME)
  make(path)
  return { dataDir, path }
}

function withDatabase (path: string, use: (db: Database.Database) => void): void {
  const db = new Database(path)
  try {
    use(db)
  } finally {
    db.close()
  }
}

/** Opening must fail with `code`, naming the file and what to do, and leave every byte of the file as it was. */
function assertRefused (t: tap.Test, dataDir: string, path: string, code: StoreErrorCode, reason: RegExp): void {
  const before = sha256File(path)
  const err = thrown(() => RegistrationStore.open({ dataDir, trustDomain: TRUST_DOMAIN }))
  t.equal(err.code, code, code)
  t.match(err.message, reason)
  t.match(err.message, path, 'the message names the file')
  t.match(err.message, /point --data-dir elsewhere/, 'and says what to do')
  t.equal(sha256File(path), before, 'the file is unchanged')
  t.same(readdirSync(dataDir), [STORE_FILE_NAME], 'and nothing was added next to it')
}

void t.test('store file – created 0600 in a data directory created 0700, with no shared-memory file', async t => {
  const dataDir = join(tmpDataDir(t), 'nested')
  const store = openStore(t, dataDir)
  store.createEntry({ spiffeId: 'spiffe://example.org/a', selectors: ['unix:uid:1'] })
  t.equal(store.path, join(dataDir, STORE_FILE_NAME))
  t.equal(modeOf(dataDir), 0o700)
  t.equal(modeOf(store.path), 0o600)
  t.equal(modeOf(`${store.path}-wal`), 0o600, 'the WAL inherits the file mode')
  t.notOk(existsSync(`${store.path}-shm`), 'exclusive locking keeps the WAL index in memory')
})

void t.test('store file – an existing data directory keeps the operator\'s mode, unless anyone may write to it', async t => {
  const dataDir = tmpDataDir(t)
  mkdirSync(dataDir)
  chmodSync(dataDir, 0o750)
  openStore(t, dataDir).close()
  t.equal(modeOf(dataDir), 0o750, 'not chmod-ed')
  for (const mode of [0o777, 0o1777, 0o702]) {
    chmodSync(dataDir, mode)
    const err = thrown(() => RegistrationStore.open({ dataDir, trustDomain: TRUST_DOMAIN }))
    t.equal(err.code, 'ERR_STORE_UNAVAILABLE', mode.toString(8))
    t.match(err.message, `data directory ${dataDir} is writable by every user (mode ${mode.toString(8)})`)
    t.match(err.message, /chmod o-w/)
  }
  const file = join(dataDir, 'not-a-dir')
  writeFileSync(file, '')
  t.match(thrown(() => RegistrationStore.open({ dataDir: file, trustDomain: TRUST_DOMAIN })),
    { code: 'ERR_STORE_UNAVAILABLE', message: /cannot use data directory .*not-a-dir/ })
})

void t.test('store file – a second opener gets ERR_STORE_UNAVAILABLE naming the holder, until the first closes', async t => {
  const dataDir = tmpDataDir(t)
  const first = openStore(t, dataDir)
  t.equal(readdirSync(dataDir).includes('registrations.pid'), true, 'the holder names itself')
  const err = thrown(() => RegistrationStore.open({ dataDir, trustDomain: TRUST_DOMAIN }))
  t.equal(err.code, 'ERR_STORE_UNAVAILABLE')
  t.match(err.message, `${first.path} is in use by another agent (pid ${process.pid}): stop it first, or point --data-dir elsewhere`)
  first.close()
  t.notOk(readdirSync(dataDir).includes('registrations.pid'), 'closing removes the owner file')
  openStore(t, dataDir)
  t.pass('the next agent opens it')
})

void t.test('store file – a file of random bytes is ERR_STORE_CORRUPT and left as it was', async t => {
  const { dataDir, path } = dataDirWith(t, path => writeFileSync(path, randomBytes(16384), { mode: 0o600 }))
  assertRefused(t, dataDir, path, 'ERR_STORE_CORRUPT', /is not a usable Chaperone registration store: it is not an SQLite database/)
})

void t.test('store file – a truncated store is ERR_STORE_CORRUPT and left as it was', async t => {
  const { dataDir, path } = dataDirWith(t, () => {})
  const store = openStore(t, dataDir)
  for (let i = 0; i < 300; i++) store.createEntry({ spiffeId: `spiffe://example.org/app-${i}`, selectors: [`unix:uid:${i}`], hint: 'x'.repeat(200) })
  store.close()
  truncateSync(path, Math.floor(statSync(path).size / 2))
  assertRefused(t, dataDir, path, 'ERR_STORE_CORRUPT', /is not a usable Chaperone registration store: .*(integrity|malformed)/)
})

void t.test('store file – a file with our application id but no bookkeeping is ERR_STORE_CORRUPT', async t => {
  const { dataDir, path } = dataDirWith(t, path => withDatabase(path, db => {
    db.pragma(`application_id = ${CHAPERONE_APPLICATION_ID}`)
    db.exec('CREATE TABLE entries (id TEXT)')
  }))
  assertRefused(t, dataDir, path, 'ERR_STORE_CORRUPT', /it is incomplete \(no schema_migrations, meta table\)/)
})

void t.test('store file – another application\'s SQLite database is ERR_STORE_FOREIGN and left as it was', async t => {
  const plain = dataDirWith(t, path => withDatabase(path, db => db.exec("CREATE TABLE photos (id INTEGER); INSERT INTO photos VALUES (1)")))
  assertRefused(t, plain.dataDir, plain.path, 'ERR_STORE_FOREIGN',
    /is an SQLite database of another application \(application_id 0x0, schema: photos\), not a Chaperone registration store/)
  const viewOnly = dataDirWith(t, path => withDatabase(path, db => db.exec('CREATE VIEW answer AS SELECT 42')))
  assertRefused(t, viewOnly.dataDir, viewOnly.path, 'ERR_STORE_FOREIGN', /schema: answer/)
  const tagged = dataDirWith(t, path => withDatabase(path, db => db.pragma('application_id = -1')))
  assertRefused(t, tagged.dataDir, tagged.path, 'ERR_STORE_FOREIGN', /application_id 0xffffffff, schema: empty/)
})

void t.test('store file – a store with a newer schema is ERR_STORE_NEWER and left as it was', async t => {
  const { dataDir, path } = dataDirWith(t, () => {})
  openStore(t, dataDir).close()
  withDatabase(path, db => db.prepare("INSERT INTO schema_migrations VALUES (?, 'from the future', 0)").run(LATEST_SCHEMA_VERSION + 1))
  assertRefused(t, dataDir, path, 'ERR_STORE_NEWER',
    new RegExp(`has schema version ${LATEST_SCHEMA_VERSION + 1}, but this build of Chaperone knows versions up to ${LATEST_SCHEMA_VERSION}`))
})

void t.test('store file – a new store is at the latest schema, and reopening applies nothing again', async t => {
  const dataDir = tmpDataDir(t)
  const clock = manualClock('2030-01-01T00:00:00Z')
  openStore(t, dataDir, { clock: clock.now }).close()
  clock.set('2031-01-01T00:00:00Z')
  openStore(t, dataDir, { clock: clock.now }).close()
  withDatabase(join(dataDir, STORE_FILE_NAME), db => {
    t.equal(db.pragma('application_id', { simple: true }), CHAPERONE_APPLICATION_ID)
    t.same(db.prepare('SELECT version, applied_at FROM schema_migrations ORDER BY version').all(),
      MIGRATIONS.map(({ version }) => ({ version, applied_at: Date.parse('2030-01-01T00:00:00Z') / 1000 })), 'every migration, each once, when the store was made')
    t.equal(MIGRATIONS.at(-1)?.version, LATEST_SCHEMA_VERSION)
    t.equal(db.pragma('integrity_check', { simple: true }), 'ok')
  })
})

void t.test('store file – an empty file (a crash before the first migration) becomes a store', async t => {
  const { dataDir, path } = dataDirWith(t, path => writeFileSync(path, '', { mode: 0o600 }))
  const store = openStore(t, dataDir)
  t.equal(store.path, path)
  t.equal(store.revision, 0)
})
