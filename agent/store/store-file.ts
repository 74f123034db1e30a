/**
 * Opening the store's SQLite file: the data directory's checks, the exclusive lock, and the refusal of any file that
 * is not a healthy Chaperone store of a version we know. Nothing is written to a file before it has passed every
 * check, so a refused file is left exactly as it was found.
 */
import { closeSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import Database from 'better-sqlite3'
import { StoreError } from './errors'
import { isWriteFailure, unwritableReason } from '../unwritable'
import { BOOKKEEPING_TABLES, CHAPERONE_APPLICATION_ID, LATEST_SCHEMA_VERSION, MIGRATIONS, applyMigrations, schemaVersion } from './schema'

export const STORE_FILE_NAME = 'registrations.sqlite3'
/** Names the process holding the store, for the error a second agent gets; the lock itself is SQLite's. */
const OWNER_FILE_NAME = 'registrations.pid'
/** An agent that is restarting may still be closing the store: wait this long for its lock before giving up. */
const LOCK_WAIT_MS = 1000

const ELSEWHERE = 'point --data-dir elsewhere'

export interface StoreFile {
  readonly db: Database.Database
  readonly path: string
  /** Closes the database and forgets the owner file; the lock goes with the connection. */
  close (): void
}

/**
 * Opens (creating if missing) `<dataDir>/registrations.sqlite3`, locked for this process and migrated to the latest
 * schema (`now`, unix seconds, is recorded with each migration); throws StoreError.
 */
export function openStoreFile (dataDir: string, now: number): StoreFile {
  prepareDataDir(dataDir)
  const path = join(dataDir, STORE_FILE_NAME)
  createIfMissing(path, dataDir)
  let db: Database.Database
  try {
    db = new Database(path, { fileMustExist: true, timeout: LOCK_WAIT_MS })
  } catch (err) {
    throw unavailable(`cannot open ${path}: ${(err as Error).message}; check its permissions, or ${ELSEWHERE}`, err)
  }
  try {
    lock(db, path, dataDir)
    refuseUnlessOurs(db, path)
    // synchronous = FULL: in WAL mode, NORMAL survives a killed process but may lose the last commits on power
    // loss; an entry acknowledged to an operator must survive both, so every commit waits for fsync of the WAL.
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = FULL')
    db.pragma('foreign_keys = ON')
    applyMigrations(db, MIGRATIONS, now)
    writeFileSync(join(dataDir, OWNER_FILE_NAME), `${process.pid}\n`, { mode: 0o600 })
  } catch (err) {
    db.close()
    throw err instanceof StoreError ? err : storeErrorFrom(err, path)
  }
  return { db, path, close: () => close(db, dataDir) }
}

function close (db: Database.Database, dataDir: string): void {
  db.close()
  const ownerFile = join(dataDir, OWNER_FILE_NAME)
  if (ownerPid(ownerFile) === process.pid) unlinkSync(ownerFile)
}

/** Creates the directory 0700 if missing; an existing one keeps the operator's mode unless anyone may write it. */
function prepareDataDir (dataDir: string): void {
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 })
    const stat = statSync(dataDir)
    if (!stat.isDirectory()) throw new Error('it is not a directory')
    if ((stat.mode & 0o002) !== 0) {
      throw new StoreError('ERR_STORE_UNAVAILABLE', `data directory ${dataDir} is writable by every user ` +
        `(mode ${(stat.mode & 0o7777).toString(8)}): anyone could replace the registration store or the CA key in it. ` +
        `Run "chmod o-w ${dataDir}", or ${ELSEWHERE}`)
    }
  } catch (err) {
    if (err instanceof StoreError) throw err
    throw unavailable(`cannot use data directory ${dataDir}: ${(err as Error).message}; ${ELSEWHERE}`, err)
  }
}

/** SQLite would create the file with the umask's mode; creating it first makes it 0600 from the start. */
function createIfMissing (path: string, dataDir: string): void {
  try {
    closeSync(openSync(path, 'wx', 0o600))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return
    throw unavailable(`cannot create ${path}: ${unwritableReason(dataDir) ?? `${(err as Error).message}; check the permissions of ${dataDir}`}, or ${ELSEWHERE}`, err)
  }
}

/**
 * Why SQLite's lock and not a lock file: `locking_mode = EXCLUSIVE` holds an exclusive lock on the database file from
 * the first transaction until the connection closes, and the kernel drops it when the process dies (even by
 * `kill -9`), so it is never stale and needs no PID guessing; in WAL mode it also keeps the WAL index in process
 * memory (no -shm file). The owner file is only there to name the holder in the error.
 */
function lock (db: Database.Database, path: string, dataDir: string): void {
  db.pragma('locking_mode = EXCLUSIVE')
  try {
    db.exec('BEGIN EXCLUSIVE; COMMIT')
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'SQLITE_BUSY') throw err
    const pid = ownerPid(join(dataDir, OWNER_FILE_NAME))
    const holder = pid !== undefined && isAlive(pid) ? `another agent (pid ${pid})` : 'another process'
    throw unavailable(`${path} is in use by ${holder}: stop it first, or ${ELSEWHERE}`, err)
  }
}

function refuseUnlessOurs (db: Database.Database, path: string): void {
  const applicationId = db.pragma('application_id', { simple: true }) as number
  // Every schema object, not only tables: a file holding nothing but someone's view or trigger is not empty.
  const objects = (db.prepare('SELECT name FROM sqlite_schema ORDER BY name').all() as Array<{ name: string }>)
    .map(row => row.name)
  // A fresh file, or one whose creator died before the first migration committed: ours to initialise.
  if (applicationId === 0 && objects.length === 0) return
  if (applicationId !== CHAPERONE_APPLICATION_ID) {
    throw new StoreError('ERR_STORE_FOREIGN', `${path} is an SQLite database of another application ` +
      `(application_id 0x${(applicationId >>> 0).toString(16)}, schema: ${objects.join(', ') || 'empty'}), not a ` +
      `Chaperone registration store; it was left untouched: move it aside, or ${ELSEWHERE}`)
  }
  const problems = (db.pragma('integrity_check') as Array<{ integrity_check: string }>).map(row => row.integrity_check)
  if (problems[0] !== 'ok') throw corrupt(path, `integrity check failed: ${problems.slice(0, 3).join('; ')}`)
  const missing = BOOKKEEPING_TABLES.filter(table => !objects.includes(table))
  if (missing.length > 0) throw corrupt(path, `it is incomplete (no ${missing.join(', ')} table)`)
  const version = schemaVersion(db)
  if (version > LATEST_SCHEMA_VERSION) {
    throw new StoreError('ERR_STORE_NEWER', `${path} has schema version ${version}, but this build of Chaperone ` +
      `knows versions up to ${LATEST_SCHEMA_VERSION}: a newer agent wrote it. Run that newer version, or ${ELSEWHERE}; ` +
      'the file was left untouched')
  }
}

function storeErrorFrom (err: unknown, path: string): StoreError {
  const { code = '' } = err as { code?: string }
  if (code === 'SQLITE_NOTADB') return corrupt(path, 'it is not an SQLite database', err)
  if (code.startsWith('SQLITE_CORRUPT')) return corrupt(path, (err as Error).message, err)
  const reason = isWriteFailure(err) ? unwritableReason(dirname(path)) : undefined
  return unavailable(`cannot use ${path}: ${reason ?? `${(err as Error).message}; check the disk and its permissions`}, or ${ELSEWHERE}`, err)
}

function corrupt (path: string, reason: string, cause?: unknown): StoreError {
  return new StoreError('ERR_STORE_CORRUPT', `${path} is not a usable Chaperone registration store: ${reason}. ` +
    `It was left untouched: restore it from a backup, or move it aside (or ${ELSEWHERE}) to start with an empty store`,
  { cause })
}

function unavailable (message: string, cause: unknown): StoreError {
  return new StoreError('ERR_STORE_UNAVAILABLE', message, { cause })
}

function ownerPid (ownerFile: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(ownerFile, 'utf8'), 10)
    return Number.isInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
