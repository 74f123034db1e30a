/**
 * The agents attested to this one (its upstream role: agent/fleet/), as SPIRE's server keeps its attested nodes:
 * recorded at each attestation, banned, evicted, and checked on every call an agent makes with its X509-SVID. A part
 * of the registration store (`RegistrationStore.agents`): each change is one of the store's durable transactions,
 * bumps its revision and reaches its change feed.
 */
import type { TrustDomain } from '../../spiffe/id'
import { checkAgentSvid, validateAgentId, validateAttestation } from './attested-agent'
import type { AttestationInput, AttestedAgent, AttestedAgentChange, AgentSvidCheck, PresentedSvid } from './attested-agent'
import type { AttestedAgentTable } from './attested-agent-table'
import { AgentError } from './errors'

export interface AttestedAgentsDeps {
  readonly table: AttestedAgentTable
  readonly trustDomain: TrustDomain
  readonly clock: () => Date
  /** Runs `write` as one store transaction and publishes the change of `kind` with the agent it returns. */
  readonly write: (kind: AttestedAgentChange['kind'], write: () => AttestedAgent) => AttestedAgent
}

export class AttestedAgents {
  readonly #deps: AttestedAgentsDeps

  constructor (deps: AttestedAgentsDeps) {
    this.#deps = deps
  }

  /**
   * Records an agent's attestation (SPIRE's AttestAgent), its first or again: the record is replaced, selectors,
   * SVID serial number and expiry included. Throws ERR_AGENT_INVALID, ERR_SELECTOR_INVALID, or ERR_AGENT_BANNED.
   */
  record (input: AttestationInput): AttestedAgent {
    const { table, trustDomain, clock, write } = this.#deps
    const agent = validateAttestation(input, trustDomain, Math.floor(clock().getTime() / 1000))
    return write('agent-attested', () => {
      if (table.get(agent.spiffeId)?.banned === true) {
        throw new AgentError('ERR_AGENT_BANNED', `failed to attest: agent ${JSON.stringify(agent.spiffeId)} is banned; it may attest again once evicted`)
      }
      table.upsert(agent)
      return agent
    })
  }

  get (spiffeId: string): AttestedAgent | undefined {
    return typeof spiffeId === 'string' ? this.#deps.table.get(spiffeId) : undefined
  }

  /** Every attested agent, banned ones too, by SPIFFE ID. */
  list (): AttestedAgent[] {
    return this.#deps.table.list()
  }

  /** Deletes an agent (SPIRE's DeleteAgent), which may then attest again; returns it. Throws ERR_AGENT_INVALID, ERR_AGENT_NOT_FOUND. */
  evict (spiffeId: string): AttestedAgent {
    return this.#deps.write('agent-evicted', () => {
      const agent = this.#existing(spiffeId)
      this.#deps.table.delete(agent.spiffeId)
      return agent
    })
  }

  /**
   * Bans an agent (SPIRE's BanAgent): kept, its serial number emptied, so its SVID and its next attestation are
   * refused until it is evicted; returns it. Banning a banned agent changes nothing. Throws like evict.
   */
  ban (spiffeId: string): AttestedAgent {
    const held = this.#existing(spiffeId)
    if (held.banned) return held
    return this.#deps.write('agent-banned', () => {
      this.#deps.table.ban(held.spiffeId)
      return this.#existing(held.spiffeId)
    })
  }

  /** Whether an agent may call with the SVID it presented (SPIRE's agent authorizer: attested-agent.ts checkAgentSvid). */
  checkSvid (agentId: string, svid: PresentedSvid): AgentSvidCheck {
    return checkAgentSvid(this.get(agentId), agentId, svid, this.#deps.clock().getTime())
  }

  #existing (spiffeId: string): AttestedAgent {
    const agent = this.#deps.table.get(validateAgentId(spiffeId, this.#deps.trustDomain))
    if (agent === undefined) throw new AgentError('ERR_AGENT_NOT_FOUND', `agent not found: no agent ${JSON.stringify(spiffeId)} has attested (or it was evicted)`)
    return agent
  }
}
