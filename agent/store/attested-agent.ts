/**
 * Attested agents: the agents (devices) that attested to this agent in its upstream role as they would to a SPIRE
 * server, kept as SPIRE's server keeps its attested nodes (pkg/server/api/agent/v1/service.go AttestAgent, BanAgent,
 * DeleteAgent): the agent's SPIFFE ID, its node attestor, its node selectors, and the serial number and notAfter of
 * the agent X509-SVID last issued to it, which is the only SVID it may call with (checkAgentSvid, SPIRE's
 * pkg/server/endpoints/middleware.go AgentAuthorizer). Banning empties the serial number, as SPIRE marks a ban: a
 * banned agent's SVID is refused, and so is its next attestation, until it is evicted (deleted), after which it may
 * attest again.
 */
import { parseSpiffeId } from '../../spiffe/id'
import type { TrustDomain } from '../../spiffe/id'
import { MAX_UNIX_SECONDS } from './entry'
import { AgentError } from './errors'
import { normalizeSelectors } from './selectors'
import type { Selector } from './selectors'

export interface AttestedAgent {
  /** `spiffe://<td>/spire/agent/<attestationType>/…` */
  readonly spiffeId: string
  /** The node attestor that attested it, e.g. `x509pop` (SPIRE's attestation_type). */
  readonly attestationType: string
  /** Its node selectors from its last attestation, e.g. x509pop `subject:cn:SN-1`; de-duplicated, sorted. */
  readonly selectors: readonly Selector[]
  /** The serial number of the agent X509-SVID last issued to it, in decimal as SPIRE shows it; '' once banned. */
  readonly serialNumber: string
  /** That SVID's notAfter, unix seconds. */
  readonly expiresAt: number
  /** Whether it renews its SVID by attesting again (x509pop: yes) rather than by RenewAgent. */
  readonly canReattest: boolean
  readonly banned: boolean
  /** Unix seconds of its last attestation. */
  readonly attestedAt: number
}

/** What an attestation established, and the agent X509-SVID issued for it. */
export interface AttestationInput {
  readonly spiffeId: string
  readonly attestationType: string
  /** `type:value` text or objects, e.g. `x509pop:subject:cn:SN-1`; any type (SPIRE's rule), possibly none. */
  readonly selectors: ReadonlyArray<string | Selector>
  /** The issued SVID's serial number (a certificate's hex serial `h` is `BigInt('0x' + h)`). */
  readonly serialNumber: bigint
  /** The issued SVID's notAfter, unix seconds. */
  readonly expiresAt: number
  readonly canReattest: boolean
}

/** The agent X509-SVID a caller presented. */
export interface PresentedSvid {
  readonly serialNumber: bigint
  /** Its notAfter, unix seconds. */
  readonly expiresAt: number
}

/** SPIRE's PermissionDeniedDetails.Reason for an agent's call refused (SDK:types/status.proto). */
export type AgentDenialReason = 'AGENT_EXPIRED' | 'AGENT_NOT_ATTESTED' | 'AGENT_NOT_ACTIVE' | 'AGENT_BANNED'

/** Whether an agent may call with the SVID it presented; a refusal carries SPIRE's reason and words. */
export type AgentSvidCheck =
  | { readonly ok: true, readonly agent: AttestedAgent }
  | { readonly ok: false, readonly reason: AgentDenialReason, readonly message: string }

export interface AttestedAgentChange {
  /** Attested (first or again), banned, or evicted; an eviction carries the agent as it was. */
  readonly kind: 'agent-attested' | 'agent-banned' | 'agent-evicted'
  readonly agent: AttestedAgent
  /** The store-wide revision this change committed. */
  readonly storeRevision: number
}

export function isAttestedAgentChange (change: { readonly kind: string }): change is AttestedAgentChange {
  return change.kind === 'agent-attested' || change.kind === 'agent-banned' || change.kind === 'agent-evicted'
}

/** SPIRE's plugin names (x509pop, tpm_devid, join_token…): the agent ID's path segment after /spire/agent/. */
const ATTESTATION_TYPE = /^[A-Za-z0-9_-]{1,64}$/
/** RFC 5280 §4.1.2.2: a positive integer of at most 20 octets. */
const MAX_SERIAL_NUMBER = 2n ** 160n - 1n

/** The agent an attestation records (not yet banned, attested at `now`); throws ERR_AGENT_INVALID or ERR_SELECTOR_INVALID. */
export function validateAttestation (input: AttestationInput, trustDomain: TrustDomain, now: number): AttestedAgent {
  if (typeof input !== 'object' || input === null) throw invalid('an attestation must be an object')
  const { attestationType, serialNumber, expiresAt, canReattest } = input
  if (typeof attestationType !== 'string' || !ATTESTATION_TYPE.test(attestationType)) {
    throw invalid(`attestationType must be a node attestor's name (1 to 64 letters, digits, "_" or "-"); got ${JSON.stringify(attestationType) ?? typeof attestationType}`)
  }
  const spiffeId = validateAgentId(input.spiffeId, trustDomain, attestationType)
  if (!Array.isArray(input.selectors)) throw invalid('selectors must be a list (possibly empty)')
  if (typeof serialNumber !== 'bigint' || serialNumber < 1n || serialNumber > MAX_SERIAL_NUMBER) {
    throw invalid(`serialNumber must be a certificate's serial number: a positive bigint of at most 20 octets; got ${typeof serialNumber === 'bigint' ? serialNumber.toString() : typeof serialNumber}`)
  }
  if (typeof expiresAt !== 'number' || !Number.isInteger(expiresAt) || expiresAt <= 0 || expiresAt > MAX_UNIX_SECONDS) {
    throw invalid(`expiresAt must be the SVID's notAfter in whole unix seconds; got ${String(expiresAt)}`)
  }
  if (typeof canReattest !== 'boolean') throw invalid('canReattest must be true or false')
  return Object.freeze({
    spiffeId,
    attestationType,
    selectors: Object.freeze(normalizeSelectors(input.selectors, 'spire')),
    serialNumber: serialNumber.toString(),
    expiresAt,
    canReattest,
    banned: false,
    attestedAt: now
  })
}

/**
 * An agent ID of the trust domain (SPIRE's api/id.go VerifyTrustDomainAgentID, with its messages), in the namespace
 * of its node attestor when one is given (VerifyTrustDomainAgentIDForNodeAttestor, which SPIRE only warns about and
 * we enforce: our node attestors name their agents that way); throws ERR_AGENT_INVALID.
 */
export function validateAgentId (text: unknown, trustDomain: TrustDomain, attestationType?: string): string {
  if (typeof text !== 'string') throw invalid('an agent ID must be a SPIFFE ID string')
  let id
  try {
    id = parseSpiffeId(text)
  } catch (err) {
    throw invalid(`invalid agent ID: ${(err as Error).message}`)
  }
  const quoted = JSON.stringify(id.toString())
  if (!id.memberOf(trustDomain)) throw invalid(`invalid agent ID: ${quoted} is not a member of trust domain ${JSON.stringify(trustDomain.name)}`)
  const namespace = attestationType === undefined ? '/spire/agent/' : `/spire/agent/${attestationType}/`
  if (!id.path.startsWith(namespace)) {
    throw invalid(attestationType === undefined
      ? `invalid agent ID: ${quoted} is not an agent in trust domain ${JSON.stringify(trustDomain.name)}; path is not in the agent namespace`
      : `invalid agent ID: ${quoted} is not in the agent namespace for attestor ${JSON.stringify(attestationType)}`)
  }
  return id.toString()
}

/**
 * SPIRE's AgentAuthorizer, in its order: the presented SVID has not expired (at `nowMs`), its agent has attested and
 * is not banned, and its serial number is the one last issued to that agent (an older SVID, even unexpired, is no
 * longer active).
 */
export function checkAgentSvid (agent: AttestedAgent | undefined, agentId: string, svid: PresentedSvid, nowMs: number): AgentSvidCheck {
  const id = JSON.stringify(agentId)
  // Written so that an expiry that is not a number counts as expired.
  if (!(nowMs <= svid.expiresAt * 1000)) return denied('AGENT_EXPIRED', `agent ${id} SVID is expired`)
  if (agent === undefined) return denied('AGENT_NOT_ATTESTED', `agent ${id} is not attested`)
  if (agent.banned) return denied('AGENT_BANNED', `agent ${id} is banned`)
  const presented = svid.serialNumber.toString()
  if (presented !== agent.serialNumber) {
    return denied('AGENT_NOT_ACTIVE', `agent ${id} expected to have serial number ${JSON.stringify(agent.serialNumber)}; has ${JSON.stringify(presented)}`)
  }
  return { ok: true, agent }
}

function denied (reason: AgentDenialReason, message: string): AgentSvidCheck {
  return { ok: false, reason, message }
}

function invalid (message: string): AgentError {
  return new AgentError('ERR_AGENT_INVALID', message)
}
