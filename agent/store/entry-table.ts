/**
 * The SQL behind the registration store: entries and their selectors as rows, through statements prepared once.
 * Callers validate and wrap writes in transactions; this file only moves validated entries in and out of tables.
 */
import type Database from 'better-sqlite3'
import { freezeEntry } from './entry'
import type { EntryFields, RegistrationEntry } from './entry'
import { selectorsFromColumn, selectorsToColumn } from './selectors'
import type { Selector } from './selectors'
import { prepareStatements } from './statements'
import type { Statements } from './statements'

interface EntryRow {
  id: string
  spiffe_id: string
  parent_id: string | null
  selectors: string
  x509_svid_ttl: number
  jwt_svid_ttl: number
  dns_names: string
  hint: string
  admin: number
  downstream: number
  store_svid: number
  federates_with: string
  expires_at: number | null
  revision: number
  created_at: number
}

const COLUMNS: ReadonlyArray<keyof EntryRow> = [
  'id', 'spiffe_id', 'parent_id', 'selectors', 'x509_svid_ttl', 'jwt_svid_ttl', 'dns_names', 'hint', 'admin',
  'downstream', 'store_svid', 'federates_with', 'expires_at', 'revision', 'created_at'
]

const UNEXPIRED = '(e.expires_at IS NULL OR e.expires_at > @now)'

/**
 * The unexpired entries `e` whose selectors are all among @selectors (a JSON array of [type, value], de-duplicated):
 * counts, per entry, how many of them it has (an indexed lookup per selector given); an entry matches when that count
 * is its whole selector set.
 */
const SELECTOR_SUBSET = `
    (
      SELECT s.entry_id, count(*) AS matched
      FROM json_each(@selectors) AS w
      JOIN entry_selectors AS s ON s.type = w.value ->> 0 AND s.value = w.value ->> 1
      GROUP BY s.entry_id
    ) AS m
    JOIN entries AS e ON e.id = m.entry_id
    WHERE m.matched = json_array_length(e.selectors) AND ${UNEXPIRED}`

/** Exported for the tests that check the query plans. */
export const ENTRY_SQL = {
  insert: `INSERT INTO entries (${COLUMNS.join(', ')}, creation_order) VALUES (${COLUMNS.map(column => `@${column}`).join(', ')}, @creation_order)`,
  update: `UPDATE entries SET ${COLUMNS.slice(1).map(column => `${column} = @${column}`).join(', ')} WHERE id = @id`,
  delete: 'DELETE FROM entries WHERE id = ?',
  insertSelector: 'INSERT INTO entry_selectors (entry_id, type, value) VALUES (?, ?, ?)',
  deleteSelectors: 'DELETE FROM entry_selectors WHERE entry_id = ?',
  get: 'SELECT * FROM entries WHERE id = ?',
  list: `
    SELECT e.* FROM entries AS e
    WHERE (@spiffeId IS NULL OR e.spiffe_id = @spiffeId)
      AND (@type IS NULL OR EXISTS (
        SELECT 1 FROM entry_selectors AS s WHERE s.entry_id = e.id AND s.type = @type AND s.value = @value))
    ORDER BY e.spiffe_id, e.id`,
  byCreation: 'SELECT * FROM entries ORDER BY creation_order',
  // An entry's possible parents: the parent IDs of the entries that have a given SPIFFE ID (entries_identity's prefix).
  parentsOf: 'SELECT DISTINCT parent_id FROM entries WHERE spiffe_id = ?',
  // A workload's entries (entriesForSelectors).
  matching: `SELECT e.* FROM ${SELECTOR_SUBSET} AND e.store_svid = 0 ORDER BY e.creation_order`,
  // An agent's node aliases: entries parented on the server (SPIRE's `-node` entries) matching its selectors.
  nodeAliases: `SELECT DISTINCT e.spiffe_id FROM ${SELECTOR_SUBSET} AND e.parent_id = @serverId`,
  // The unexpired entries parented on an ID (entries_by_parent, schema v5), with their creation order.
  childrenOf: `SELECT e.* FROM entries AS e WHERE e.parent_id = @parentId AND ${UNEXPIRED}`,
  // The same expression as the unique index entries_identity, so this is an indexed lookup.
  duplicate: `
    SELECT id FROM entries
    WHERE spiffe_id = @spiffeId AND ifnull(parent_id, '') = @parentId AND selectors = @selectors AND id IS NOT @exceptId
    LIMIT 1`
} as const

/** An entry and the rank of its creation among all entries (SPIRE pages by its row ID, which is the same order). */
export interface CreatedEntry {
  readonly entry: RegistrationEntry
  readonly creationOrder: number
}


export class EntryTable {
  readonly #statements: Statements<typeof ENTRY_SQL>

  constructor (db: Database.Database) {
    this.#statements = prepareStatements(db, ENTRY_SQL)
  }

  /** Stores a new entry; `creationOrder` ranks it among the others (the store revision that creates it). */
  insert (entry: RegistrationEntry, creationOrder: number): void {
    this.#statements.insert.run({ ...toRow(entry), creation_order: creationOrder })
    this.#insertSelectors(entry)
  }

  update (entry: RegistrationEntry): void {
    this.#statements.update.run(toRow(entry))
    this.#statements.deleteSelectors.run(entry.id)
    this.#insertSelectors(entry)
  }

  /** Deletes the entry; its selector rows go with it (ON DELETE CASCADE). */
  delete (id: string): void {
    this.#statements.delete.run(id)
  }

  get (id: string): RegistrationEntry | undefined {
    const row = this.#statements.get.get(id) as EntryRow | undefined
    return row === undefined ? undefined : fromRow(row)
  }

  list (spiffeId: string | undefined, selector: Selector | undefined): RegistrationEntry[] {
    const rows = this.#statements.list.all({
      spiffeId: spiffeId ?? null,
      type: selector?.type ?? null,
      value: selector?.value ?? null
    }) as EntryRow[]
    return rows.map(fromRow)
  }

  /** Every entry with the rank of its creation (a number that only grows), in creation order. */
  byCreation (): CreatedEntry[] {
    return (this.#statements.byCreation.all() as CreationRow[]).map(createdEntry)
  }

  /** The parent IDs (null for none) of the entries whose SPIFFE ID is `spiffeId`. */
  parentsOf (spiffeId: string): Array<string | null> {
    return (this.#statements.parentsOf.all(spiffeId) as Array<{ parent_id: string | null }>).map(row => row.parent_id)
  }

  /** Entries, not expired at `now` and not for an SVIDStore, whose selectors are all among the given (de-duplicated) selectors. */
  matching (selectors: readonly Selector[], now: number): RegistrationEntry[] {
    return (this.#statements.matching.all({ selectors: selectorPairs(selectors), now }) as EntryRow[]).map(fromRow)
  }

  /**
   * The SPIFFE IDs of the node aliases, not expired at `now`, of an agent with the given (de-duplicated) selectors:
   * entries parented on `serverId` whose selectors are all among the agent's.
   */
  nodeAliases (selectors: readonly Selector[], serverId: string, now: number): string[] {
    return this.#statements.nodeAliases.pluck().all({ selectors: selectorPairs(selectors), serverId, now }) as string[]
  }

  /** The entries, not expired at `now`, whose parent ID is `parentId`, each with the rank of its creation. */
  childrenOf (parentId: string, now: number): CreatedEntry[] {
    return (this.#statements.childrenOf.all({ parentId, now }) as CreationRow[]).map(createdEntry)
  }

  /** The ID of another entry with the same SPIFFE ID, parent ID and selector set, if there is one. */
  duplicateOf (fields: EntryFields, exceptId: string | null): string | undefined {
    const row = this.#statements.duplicate.get({
      spiffeId: fields.spiffeId,
      parentId: fields.parentId ?? '',
      selectors: selectorsToColumn(fields.selectors),
      exceptId
    }) as { id: string } | undefined
    return row?.id
  }

  #insertSelectors (entry: RegistrationEntry): void {
    for (const selector of entry.selectors) this.#statements.insertSelector.run(entry.id, selector.type, selector.value)
  }
}

type CreationRow = EntryRow & { creation_order: number }

function createdEntry (row: CreationRow): CreatedEntry {
  return Object.freeze({ entry: fromRow(row), creationOrder: row.creation_order })
}

function selectorPairs (selectors: readonly Selector[]): string {
  return JSON.stringify(selectors.map(selector => [selector.type, selector.value]))
}

function toRow (entry: RegistrationEntry): EntryRow {
  return {
    id: entry.id,
    spiffe_id: entry.spiffeId,
    parent_id: entry.parentId,
    selectors: selectorsToColumn(entry.selectors),
    x509_svid_ttl: entry.x509SvidTtl,
    jwt_svid_ttl: entry.jwtSvidTtl,
    dns_names: JSON.stringify(entry.dnsNames),
    hint: entry.hint,
    admin: entry.admin ? 1 : 0,
    downstream: entry.downstream ? 1 : 0,
    store_svid: entry.storeSvid ? 1 : 0,
    federates_with: JSON.stringify(entry.federatesWith),
    expires_at: entry.expiresAt,
    revision: entry.revision,
    created_at: entry.createdAt
  }
}

function fromRow (row: EntryRow): RegistrationEntry {
  return freezeEntry({
    id: row.id,
    spiffeId: row.spiffe_id,
    parentId: row.parent_id,
    selectors: selectorsFromColumn(row.selectors),
    x509SvidTtl: row.x509_svid_ttl,
    jwtSvidTtl: row.jwt_svid_ttl,
    dnsNames: JSON.parse(row.dns_names) as string[],
    hint: row.hint,
    admin: row.admin === 1,
    downstream: row.downstream === 1,
    storeSvid: row.store_svid === 1,
    federatesWith: JSON.parse(row.federates_with) as string[],
    expiresAt: row.expires_at,
    revision: row.revision,
    createdAt: row.created_at
  })
}
