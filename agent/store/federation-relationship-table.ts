/**
 * The SQL behind federation relationships, through statements prepared once. There are few of them and they are
 * read by the fetchers and the APIs only, so each read goes to the table; writes run inside the store's transaction.
 */
import type Database from 'better-sqlite3'
import type { Logger } from 'pino'
import { parseSpiffeId, parseTrustDomain } from '../../spiffe/id'
import type { FederationRelationship, RelationshipProfile, RelationshipSource } from './federation-relationship'
import { prepareStatements } from './statements'
import type { Statements } from './statements'

interface RelationshipRow {
  trust_domain: string
  bundle_endpoint_url: string
  profile: string
  endpoint_spiffe_id: string | null
  source: string
  created_at: number
  updated_at: number
}

/** Exported for the tests. */
export const RELATIONSHIP_SQL = {
  upsert: `
    INSERT INTO federation_relationships (trust_domain, bundle_endpoint_url, profile, endpoint_spiffe_id, source, created_at, updated_at)
    VALUES (@trust_domain, @bundle_endpoint_url, @profile, @endpoint_spiffe_id, @source, @created_at, @updated_at)
    ON CONFLICT (trust_domain) DO UPDATE SET bundle_endpoint_url = excluded.bundle_endpoint_url, profile = excluded.profile,
      endpoint_spiffe_id = excluded.endpoint_spiffe_id, source = excluded.source, updated_at = excluded.updated_at`,
  get: 'SELECT * FROM federation_relationships WHERE trust_domain = ?',
  list: 'SELECT * FROM federation_relationships ORDER BY trust_domain',
  delete: 'DELETE FROM federation_relationships WHERE trust_domain = ?'
} as const


export class RelationshipTable {
  readonly #statements: Statements<typeof RELATIONSHIP_SQL>
  readonly #logger: Logger

  constructor (db: Database.Database, logger: Logger) {
    this.#statements = prepareStatements(db, RELATIONSHIP_SQL)
    this.#logger = logger
  }

  upsert (relationship: FederationRelationship): void {
    const { profile } = relationship
    this.#statements.upsert.run({
      trust_domain: relationship.trustDomain.name,
      bundle_endpoint_url: relationship.bundleEndpointUrl,
      profile: profile.kind,
      endpoint_spiffe_id: profile.kind === 'https_spiffe' ? profile.endpointSpiffeId.toString() : null,
      source: relationship.source,
      created_at: relationship.createdAt,
      updated_at: relationship.updatedAt
    })
  }

  get (name: string): FederationRelationship | undefined {
    const row = this.#statements.get.get(name) as RelationshipRow | undefined
    return row === undefined ? undefined : this.#read(row)
  }

  /** Every relationship, by trust domain; a row that no longer parses is logged and left out. */
  list (): FederationRelationship[] {
    return (this.#statements.list.all() as RelationshipRow[]).flatMap(row => this.#read(row) ?? [])
  }

  delete (name: string): void {
    this.#statements.delete.run(name)
  }

  #read (row: RelationshipRow): FederationRelationship | undefined {
    try {
      const profile: RelationshipProfile = row.profile === 'https_spiffe'
        ? { kind: 'https_spiffe', endpointSpiffeId: parseSpiffeId(row.endpoint_spiffe_id ?? '') }
        : { kind: 'https_web' }
      return Object.freeze({
        trustDomain: parseTrustDomain(row.trust_domain),
        bundleEndpointUrl: row.bundle_endpoint_url,
        profile,
        source: row.source as RelationshipSource,
        createdAt: row.created_at,
        updatedAt: row.updated_at
      })
    } catch (err) {
      this.#logger.error({ err, trustDomain: row.trust_domain }, 'a stored federation relationship cannot be read; it is ignored until it is created again')
      return undefined
    }
  }
}
