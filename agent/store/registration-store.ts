/**
 * The agent's registration store: registration entries in SQLite, validated on the way in, every change one
 * durable transaction that also bumps the store-wide revision, and a change feed the Workload API follows.
 */
import { randomUUID } from 'node:crypto'
import pino from 'pino'
import type { Logger } from 'pino'
import type Database from 'better-sqlite3'
import type { TrustDomain } from '../../spiffe/id'
import { ChangeFeed } from './change-feed'
import type { ChangeListener } from './change-feed'
import { freezeEntry, validateEntryInput, validatePatch } from './entry'
import type { EntryChange, EntryFields, EntryInput, EntryPatch, RegistrationEntry } from './entry'
import { EntryTable } from './entry-table'
import { EntryError } from './errors'
import { formatSelector, parseSelector } from './selectors'
import type { Selector } from './selectors'
import { openStoreFile } from './store-file'
import type { StoreFile } from './store-file'

export interface RegistrationStoreOptions {
  /** The agent's data directory; created 0700 if missing. */
  readonly dataDir: string
  /** Every entry's SPIFFE ID must be in this trust domain. */
  readonly trustDomain: TrustDomain
  readonly logger?: Logger
  /** The time for createdAt and for expiry; tests pass a fixed one. */
  readonly clock?: () => Date
}

export interface EntryFilter {
  readonly spiffeId?: string
  readonly selector?: string | Selector
}

/** The meta key holding the store-wide revision; written only by the store itself. */
const STORE_REVISION_KEY = 'store_revision'

export class RegistrationStore {
  /** `<dataDir>/registrations.sqlite3` */
  readonly path: string
  readonly #file: StoreFile
  readonly #entries: EntryTable
  readonly #feed: ChangeFeed
  readonly #trustDomain: TrustDomain
  readonly #clock: () => Date
  readonly #getMeta: Database.Statement<[string], { value: string }>
  readonly #setMeta: Database.Statement<[string, string]>
  readonly #commit: (kind: EntryChange['kind'], write: () => RegistrationEntry) => EntryChange
  #revision: number
  #closed = false

  /** Opens the store, creating or migrating it as needed; throws StoreError when the file cannot be used. */
  static open (options: RegistrationStoreOptions): RegistrationStore {
    const clock = options.clock ?? (() => new Date())
    const file = openStoreFile(options.dataDir, unixSeconds(clock()))
    try {
      return new RegistrationStore(file, options, clock)
    } catch (err) {
      file.close()
      throw err
    }
  }

  private constructor (file: StoreFile, options: RegistrationStoreOptions, clock: () => Date) {
    const { db } = file
    this.path = file.path
    this.#file = file
    this.#entries = new EntryTable(db)
    this.#feed = new ChangeFeed((options.logger ?? pino()).child({ component: 'registration-store' }))
    this.#trustDomain = options.trustDomain
    this.#clock = clock
    this.#getMeta = db.prepare('SELECT value FROM meta WHERE key = ?')
    this.#setMeta = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value')
    this.#revision = Number(this.#getMeta.get(STORE_REVISION_KEY)?.value ?? 0)
    this.#commit = db.transaction((kind: EntryChange['kind'], write: () => RegistrationEntry): EntryChange => {
      const entry = write()
      const storeRevision = this.#revision + 1
      this.#setMeta.run(STORE_REVISION_KEY, String(storeRevision))
      return { kind, entry, storeRevision }
    })
  }

  /** The store-wide revision: bumped by every committed change, and persisted with it. */
  get revision (): number {
    return this.#revision
  }

  /** Validates and stores a new entry; throws EntryError (ERR_ENTRY_INVALID, ERR_SELECTOR_INVALID, ERR_ENTRY_DUPLICATE). */
  createEntry (input: EntryInput): RegistrationEntry {
    const fields = validateEntryInput(input, this.#trustDomain)
    return this.#write('created', () => {
      this.#refuseDuplicate(fields, null)
      const entry = freezeEntry({ id: randomUUID(), ...fields, revision: 0, createdAt: unixSeconds(this.#clock()) })
      // Writes are serialised by the store's exclusive lock, so the next revision is this write's.
      this.#entries.insert(entry, this.#revision + 1)
      return entry
    })
  }

  /** Replaces the fields the patch gives; the entry's revision goes up by one. Throws like createEntry, or ERR_ENTRY_NOT_FOUND. */
  updateEntry (id: string, patch: EntryPatch): RegistrationEntry {
    return this.#write('updated', () => {
      const old = this.#existing(id)
      const fields = validatePatch(old, patch, this.#trustDomain)
      this.#refuseDuplicate(fields, id)
      const entry = freezeEntry({ id, ...fields, revision: old.revision + 1, createdAt: old.createdAt })
      this.#entries.update(entry)
      return entry
    })
  }

  /** Deletes an entry and returns what was deleted; throws ERR_ENTRY_NOT_FOUND. */
  deleteEntry (id: string): RegistrationEntry {
    return this.#write('deleted', () => {
      const entry = this.#existing(id)
      this.#entries.delete(id)
      return entry
    })
  }

  getEntry (id: string): RegistrationEntry | undefined {
    return typeof id === 'string' ? this.#entries.get(id) : undefined
  }

  /** Every entry (expired ones too), optionally only those with a SPIFFE ID and/or a selector; sorted by spiffeId, then id. */
  listEntries (filter: EntryFilter = {}): RegistrationEntry[] {
    const selector = typeof filter.selector === 'string' ? parseSelector(filter.selector) : filter.selector
    return this.#entries.list(filter.spiffeId, selector)
  }

  /**
   * Every unexpired entry whose selectors are all among the workload's (SPIRE's rule), in creation order (SQLite's
   * rowid, exact even within one second), so the first is stable: the Workload API's default SVID.
   */
  entriesForSelectors (selectors: readonly Selector[]): RegistrationEntry[] {
    const unique = [...new Map(selectors.map(selector => [formatSelector(selector), selector])).values()]
    return this.#entries.matching(unique, unixSeconds(this.#clock()))
  }

  /** Calls `listener` synchronously after each committed change, in commit order; returns the unsubscribe function. */
  onChange (listener: ChangeListener): () => void {
    return this.#feed.subscribe(listener)
  }

  /** A value other parts of the agent (the CA) keep with the store. */
  getMeta (key: string): string | undefined {
    return this.#getMeta.get(key)?.value
  }

  /** Stores a value durably, in its own transaction; does not change the store revision (it is not an entry change). */
  setMeta (key: string, value: string): void {
    if (key === STORE_REVISION_KEY) throw new TypeError(`meta key "${STORE_REVISION_KEY}" belongs to the registration store`)
    this.#setMeta.run(key, value)
  }

  /** Closes the database and releases the lock; safe to call twice. */
  close (): void {
    if (this.#closed) return
    this.#closed = true
    this.#feed.clear()
    this.#file.close()
  }

  #write (kind: EntryChange['kind'], write: () => RegistrationEntry): RegistrationEntry {
    const change = this.#commit(kind, write)
    this.#revision = change.storeRevision
    this.#feed.publish(change)
    return change.entry
  }

  #existing (id: string): RegistrationEntry {
    const entry = this.getEntry(id)
    if (entry === undefined) throw new EntryError('ERR_ENTRY_NOT_FOUND', `no registration entry with ID ${JSON.stringify(id)}`)
    return entry
  }

  #refuseDuplicate (fields: EntryFields, exceptId: string | null): void {
    const duplicate = this.#entries.duplicateOf(fields, exceptId)
    if (duplicate !== undefined) {
      throw new EntryError('ERR_ENTRY_DUPLICATE', `entry ${duplicate} already gives ${fields.spiffeId} to the same ` +
        `parent ID and selectors (${fields.selectors.map(formatSelector).join(', ')}); update that entry instead`)
    }
  }
}

function unixSeconds (date: Date): number {
  return Math.floor(date.getTime() / 1000)
}
