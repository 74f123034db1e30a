/**
 * The SQL behind attested agents, through statements prepared once. Agents are read from the table on every call
 * (a primary-key lookup: an agent's calls are checked one by one), so nothing is held in memory; writes run inside the
 * store's transaction.
 */
import type Database from 'better-sqlite3'
import type { Logger } from 'pino'
import type { AttestedAgent } from './attested-agent'
import { selectorsFromColumn, selectorsToColumn } from './selectors'
import type { Selector } from './selectors'
import { prepareStatements } from './statements'
import type { Statements } from './statements'

interface AttestedAgentRow {
  spiffe_id: string
  attestation_type: string
  selectors: string
  serial_number: string
  expires_at: number
  can_reattest: number
  banned: number
  attested_at: number
}

/** Exported for the tests. */
export const ATTESTED_AGENT_SQL = {
  // A re-attestation replaces every field: SPIRE's AttestAgent updates the SVID's serial and expiry, can_reattest,
  // and sets the node selectors anew.
  upsert: `
    INSERT INTO attested_agents (spiffe_id, attestation_type, selectors, serial_number, expires_at, can_reattest, banned, attested_at)
    VALUES (@spiffe_id, @attestation_type, @selectors, @serial_number, @expires_at, @can_reattest, @banned, @attested_at)
    ON CONFLICT (spiffe_id) DO UPDATE SET attestation_type = excluded.attestation_type, selectors = excluded.selectors,
      serial_number = excluded.serial_number, expires_at = excluded.expires_at, can_reattest = excluded.can_reattest,
      banned = excluded.banned, attested_at = excluded.attested_at`,
  get: 'SELECT * FROM attested_agents WHERE spiffe_id = ?',
  list: 'SELECT * FROM attested_agents ORDER BY spiffe_id',
  delete: 'DELETE FROM attested_agents WHERE spiffe_id = ?',
  // SPIRE's BanAgent empties the serial numbers; the expiry stays.
  ban: "UPDATE attested_agents SET banned = 1, serial_number = '' WHERE spiffe_id = ?"
} as const


export class AttestedAgentTable {
  readonly #statements: Statements<typeof ATTESTED_AGENT_SQL>
  readonly #logger: Logger

  constructor (db: Database.Database, logger: Logger) {
    this.#statements = prepareStatements(db, ATTESTED_AGENT_SQL)
    this.#logger = logger
  }

  /** Records an attestation, replacing the agent's previous record; inside the store's write transaction. */
  upsert (agent: AttestedAgent): void {
    this.#statements.upsert.run({
      spiffe_id: agent.spiffeId,
      attestation_type: agent.attestationType,
      selectors: selectorsToColumn(agent.selectors),
      serial_number: agent.serialNumber,
      expires_at: agent.expiresAt,
      can_reattest: agent.canReattest ? 1 : 0,
      banned: agent.banned ? 1 : 0,
      attested_at: agent.attestedAt
    })
  }

  get (spiffeId: string): AttestedAgent | undefined {
    const row = this.#statements.get.get(spiffeId) as AttestedAgentRow | undefined
    return row === undefined ? undefined : this.#fromRow(row)
  }

  /** Every agent, by SPIFFE ID. */
  list (): AttestedAgent[] {
    return (this.#statements.list.all() as AttestedAgentRow[]).map(row => this.#fromRow(row))
  }

  /** Deletes the agent; inside the store's write transaction. */
  delete (spiffeId: string): void {
    this.#statements.delete.run(spiffeId)
  }

  /** Marks the agent banned; inside the store's write transaction. */
  ban (spiffeId: string): void {
    this.#statements.ban.run(spiffeId)
  }

  /**
   * Selectors that no longer read (a damaged row) are logged and read as none: the agent then gets no entry through
   * a node alias (never more than it should), while its ban and serial number, which the table's checks keep
   * consistent, still count. Its next attestation rewrites them.
   */
  #fromRow (row: AttestedAgentRow): AttestedAgent {
    let selectors: readonly Selector[]
    try {
      selectors = selectorsFromColumn(row.selectors)
    } catch (err) {
      this.#logger.error({ err, agentId: row.spiffe_id }, 'the stored selectors of this attested agent cannot be read; it is given no entry ' +
        'through a node alias until it attests again')
      selectors = []
    }
    return Object.freeze({
      spiffeId: row.spiffe_id,
      attestationType: row.attestation_type,
      selectors: Object.freeze(selectors),
      serialNumber: row.serial_number,
      expiresAt: row.expires_at,
      canReattest: row.can_reattest === 1,
      banned: row.banned === 1,
      attestedAt: row.attested_at
    })
  }
}
