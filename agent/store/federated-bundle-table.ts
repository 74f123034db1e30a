/**
 * The SQL behind federated bundles, and their parsed copies. The Workload API reads the bundles a workload federates
 * with on every message it sends, so they are parsed once (at open, and when set) and held in memory; a write goes to
 * the table inside the store's transaction, and reaches the held copies only once that transaction has committed.
 */
import type Database from 'better-sqlite3'
import type { Logger } from 'pino'
import { parseTrustDomain } from '../../spiffe/id'
import type { TrustDomain } from '../../spiffe/id'
import { SpiffeBundle } from '../../spiffe/spiffe-bundle'
import type { FederatedBundle, FederatedBundleChange } from './federated-bundle'
import { prepareStatements } from './statements'
import type { Statements } from './statements'

interface FederatedBundleRow {
  trust_domain: string
  bundle: string
  sequence: number | null
  updated_at: number
}

/** Exported for the tests. */
export const FEDERATED_BUNDLE_SQL = {
  upsert: `
    INSERT INTO federated_bundles (trust_domain, bundle, sequence, updated_at)
    VALUES (@trust_domain, @bundle, @sequence, @updated_at)
    ON CONFLICT (trust_domain) DO UPDATE SET bundle = excluded.bundle, sequence = excluded.sequence, updated_at = excluded.updated_at`,
  delete: 'DELETE FROM federated_bundles WHERE trust_domain = ?',
  list: 'SELECT * FROM federated_bundles ORDER BY trust_domain'
} as const


export class FederatedBundleTable {
  readonly #statements: Statements<typeof FEDERATED_BUNDLE_SQL>
  /** By trust domain name, as of the last committed change. */
  readonly #held = new Map<string, FederatedBundle>()

  /**
   * Reads every stored bundle. One that no longer parses (a damaged row, or a rule this version added) is logged and
   * left out rather than keeping the agent from starting; setting it again replaces it.
   */
  constructor (db: Database.Database, logger: Logger) {
    this.#statements = prepareStatements(db, FEDERATED_BUNDLE_SQL)
    for (const row of this.#statements.list.all() as FederatedBundleRow[]) {
      try {
        const held = fromRow(row)
        this.#held.set(held.trustDomain.name, held)
      } catch (err) {
        logger.error({ err, trustDomain: row.trust_domain }, 'the stored federated bundle of this trust domain cannot be read; ' +
          'it is not served until it is set again (chaperone bundle set)')
      }
    }
  }

  /** Stores the bundle, replacing the trust domain's previous one; inside the store's write transaction. */
  upsert (held: FederatedBundle): void {
    this.#statements.upsert.run({
      trust_domain: held.trustDomain.name,
      // The document as the SPIFFE bundle code wrote it after parsing, not the operator's text: canonical, and
      // exactly what the agent serves.
      bundle: held.bundle.marshal(),
      sequence: held.bundle.sequence ?? null,
      updated_at: held.updatedAt
    })
  }

  /** Deletes the trust domain's bundle; inside the store's write transaction. */
  delete (trustDomain: TrustDomain): void {
    this.#statements.delete.run(trustDomain.name)
  }

  /** Makes a committed change what get and list answer. */
  committed (change: FederatedBundleChange): void {
    const { trustDomain } = change.bundle
    if (change.kind === 'federated-bundle-set') this.#held.set(trustDomain.name, change.bundle)
    else this.#held.delete(trustDomain.name)
  }

  /** By trust domain name. */
  get (name: string): FederatedBundle | undefined {
    return this.#held.get(name)
  }

  /** Every held bundle, by trust domain name. */
  list (): FederatedBundle[] {
    return [...this.#held.values()].sort((a, b) => a.trustDomain.name < b.trustDomain.name ? -1 : 1)
  }
}

function fromRow (row: FederatedBundleRow): FederatedBundle {
  const trustDomain = parseTrustDomain(row.trust_domain)
  return Object.freeze({ trustDomain, bundle: SpiffeBundle.parse(trustDomain, row.bundle), updatedAt: row.updated_at })
}
