/**
 * The SQL behind the appended authorities of our own trust domain's bundle, and their parsed copies. Every Workload
 * API message carries our bundle, so they are parsed once (at open) and held in memory; a write goes to the table
 * inside the store's transaction, and reaches the held copies only once that transaction has committed.
 */
import type Database from 'better-sqlite3'
import type { Logger } from 'pino'
import type { TrustDomain } from '../../spiffe/id'
import { jwtAuthority, x509Authority } from './appended-authority'
import type { AppendedAuthorities, AppendedAuthoritiesChange, AppendedAuthority } from './appended-authority'
import { prepareStatements } from './statements'
import type { Statements } from './statements'

interface AppendedAuthorityRow {
  kind: 'x509' | 'jwt'
  id: string
  der: Buffer
  expires_at: number
  appended_at: number
}

/** The meta key holding the appended authorities' revision (schema v4). */
const REVISION_KEY = 'appended_authorities_revision'

/** Exported for the tests. */
export const APPENDED_AUTHORITY_SQL = {
  // A row held but unreadable (see the constructor) is replaced by the same authority appended again.
  insert: `
    INSERT INTO appended_authorities (kind, id, der, expires_at, appended_at) VALUES (@kind, @id, @der, @expires_at, @appended_at)
    ON CONFLICT (kind, id) DO UPDATE SET der = excluded.der, expires_at = excluded.expires_at, appended_at = excluded.appended_at`,
  delete: 'DELETE FROM appended_authorities WHERE kind = ? AND id = ?',
  list: 'SELECT kind, id, der, expires_at, appended_at FROM appended_authorities ORDER BY rowid',
  revision: `SELECT value FROM meta WHERE key = '${REVISION_KEY}'`,
  setRevision: `UPDATE meta SET value = ? WHERE key = '${REVISION_KEY}'`
} as const


export class AppendedAuthorityTable {
  readonly #statements: Statements<typeof APPENDED_AUTHORITY_SQL>
  /** As of the last committed change. */
  #held: AppendedAuthorities

  /**
   * Reads every stored authority. One that no longer reads (a damaged row, or a rule this version added) is logged
   * and left out rather than keeping the agent from starting; appending it again repairs it.
   */
  constructor (db: Database.Database, trustDomain: TrustDomain, logger: Logger) {
    this.#statements = prepareStatements(db, APPENDED_AUTHORITY_SQL)
    const authorities = (this.#statements.list.all() as AppendedAuthorityRow[]).flatMap(row => {
      try {
        return [fromRow(row, trustDomain)]
      } catch (err) {
        logger.error({ err, kind: row.kind, id: row.id }, 'an authority appended to our trust domain\'s bundle cannot be read; it is not served ' +
          'until it is appended again (chaperone bundle append)')
        return []
      }
    })
    const revision = Number((this.#statements.revision.get() as { value: string } | undefined)?.value ?? 0)
    this.#held = Object.freeze({ trustDomain, authorities: Object.freeze(authorities), revision })
  }

  get current (): AppendedAuthorities {
    return this.#held
  }

  /** Stores the authorities after the held ones, inside the store's write transaction; returns what it commits. */
  append (added: readonly AppendedAuthority[]): AppendedAuthorities {
    for (const authority of added) this.#statements.insert.run(toRow(authority))
    return this.#next([...this.#held.authorities, ...added])
  }

  /** Deletes a held authority, inside the store's write transaction; returns what it commits. */
  remove (authority: AppendedAuthority): AppendedAuthorities {
    const { kind, id } = toRow(authority)
    this.#statements.delete.run(kind, id)
    return this.#next(this.#held.authorities.filter(held => held !== authority))
  }

  /** Makes a committed change what `current` answers. */
  committed (change: AppendedAuthoritiesChange): void {
    this.#held = change.bundle
  }

  #next (authorities: readonly AppendedAuthority[]): AppendedAuthorities {
    const revision = this.#held.revision + 1
    this.#statements.setRevision.run(String(revision))
    return Object.freeze({ trustDomain: this.#held.trustDomain, authorities: Object.freeze(authorities), revision })
  }
}

function toRow (authority: AppendedAuthority): AppendedAuthorityRow {
  const common = { kind: authority.kind, expires_at: authority.expiresAt, appended_at: authority.appendedAt }
  return authority.kind === 'x509' ? { ...common, id: authority.sha256, der: authority.der } : { ...common, id: authority.keyId, der: authority.publicKey }
}

function fromRow (row: AppendedAuthorityRow, trustDomain: TrustDomain): AppendedAuthority {
  if (row.kind === 'x509') return x509Authority(row.der, row.appended_at)
  return jwtAuthority({ keyId: row.id, publicKey: row.der, expiresAt: row.expires_at }, trustDomain, row.appended_at)
}
