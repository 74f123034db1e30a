import t from 'tap'
import Database from 'better-sqlite3'
import type { Migration } from '../../../agent/store/schema'
import { CHAPERONE_APPLICATION_ID, MIGRATIONS, applyMigrations, schemaVersion } from '../../../agent/store/schema'

const V1: Migration = { version: 1, description: 'notes', sql: 'CREATE TABLE notes (text TEXT)' }
const V2: Migration = { version: 2, description: 'note authors', sql: "ALTER TABLE notes ADD COLUMN author TEXT NOT NULL DEFAULT ''" }

function memoryDb (t: tap.Test): Database.Database {
  const db = new Database(':memory:')
  t.teardown(() => db.close())
  return db
}

const tables = (db: Database.Database): string[] =>
  (db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").all() as Array<{ name: string }>).map(row => row.name)

void t.test('schema – an older database migrates forward, applying only what it lacks, in order', async t => {
  const db = memoryDb(t)
  t.equal(schemaVersion(db), 0, 'a fresh database is at version 0')
  t.same(applyMigrations(db, [V1], 100), [1])
  db.exec("INSERT INTO notes (text) VALUES ('kept')")
  t.same(applyMigrations(db, [V1, V2], 200), [2], 'only the newer migration runs')
  t.same(applyMigrations(db, [V1, V2], 300), [], 'and nothing the next time')
  t.equal(schemaVersion(db), 2)
  t.same(db.prepare('SELECT text, author FROM notes').all(), [{ text: 'kept', author: '' }], 'data survives migration')
  t.same(db.prepare('SELECT version, applied_at FROM schema_migrations ORDER BY version').all(),
    [{ version: 1, applied_at: 100 }, { version: 2, applied_at: 200 }])
  t.equal(db.pragma('application_id', { simple: true }), CHAPERONE_APPLICATION_ID)
})

void t.test('schema – a failing migration leaves the database at the previous version, nothing half-applied', async t => {
  const db = memoryDb(t)
  applyMigrations(db, [V1], 100)
  const broken: Migration = { version: 2, description: 'broken', sql: 'CREATE TABLE half (x); INSERT INTO missing VALUES (1)' }
  t.throws(() => applyMigrations(db, [V1, broken], 200), /no such table: missing/)
  t.equal(schemaVersion(db), 1)
  t.notOk(tables(db).includes('half'), 'the first statement of the failed migration was rolled back')
})

void t.test('schema – a database is marked as ours only together with its first migration', async t => {
  const db = memoryDb(t)
  const broken: Migration = { version: 1, description: 'broken', sql: 'CREATE TABLE a (x); SELECT * FROM missing' }
  t.throws(() => applyMigrations(db, [broken], 0))
  t.equal(db.pragma('application_id', { simple: true }), 0)
  t.same(tables(db), [], 'no bookkeeping table either')
})

void t.test('schema – migrations are numbered 1, 2, 3… without gaps', async t => {
  t.same(MIGRATIONS.map(migration => migration.version), MIGRATIONS.map((_, i) => i + 1))
})
