/**
 * SPIRE's server Agent service (spire.api.server.agent.v1.Agent), read-only: this node has one agent, the Chaperone
 * agent itself, described as SPIRE describes an attested agent so that an orchestrator can learn the parent ID its
 * entries need (RegistrationStore.agentId, spiffe://<td>/spire/agent/chaperone/<node>). Its attestation type is
 * "chaperone", as in its ID's path; it holds no X509-SVID of its own (it is the CA), so its serial number is empty
 * and its expiry 0; it has no selectors, is never banned and cannot re-attest. The other calls (attesting, renewing,
 * banning, deleting agents, join tokens) are not in our agent.proto: grpc-js answers UNIMPLEMENTED, naming them.
 */
import { status } from '@grpc/grpc-js'
import type { UntypedServiceImplementation } from '@grpc/grpc-js'
import type { Logger } from 'pino'
import type { RegistrationStore } from '../store'
import { SpireApiError } from './api-error'
import type { CallerRegistry } from './callers'
import { checkSelector } from './entry-mapping'
import { keyedPage } from './keyed-paging'
import type { AgentFilterMessage, AgentMaskMessage, AgentMessage, SpiffeIdMessage } from './messages'
import { serviceCalls } from './service-calls'
import { idFromProto, idToProto } from './spire-id'

export interface AgentServiceDeps {
  readonly store: RegistrationStore
  readonly trustDomain: string
  readonly logger: Logger
  readonly callers: CallerRegistry
}

export const ATTESTATION_TYPE = 'chaperone'
const MASKABLE: ReadonlyArray<keyof AgentMaskMessage> = ['attestation_type', 'x509svid_serial_number', 'x509svid_expires_at', 'selectors', 'banned', 'can_reattest']
const ZERO: Readonly<Omit<AgentMessage, 'id'>> = Object.freeze({
  attestation_type: '', x509svid_serial_number: '', x509svid_expires_at: 0, selectors: [], banned: false, can_reattest: false
})
/** Go's time layout SPIRE reads by_expires_before with ("2006-01-02 15:04:05 -0700 -07"). */
const EXPIRES_BEFORE = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{4} [+-]\d{2}$/

export function agentHandlers (deps: AgentServiceDeps): UntypedServiceImplementation {
  const { unary } = serviceCalls(deps.logger, deps.callers)
  const described = (): AgentMessage => ({ ...ZERO, id: idToProto(deps.store.agentId), attestation_type: ATTESTATION_TYPE })
  const matching = (filter: AgentFilterMessage | null): AgentMessage[] => [described()].filter(agentFilter(filter))
  return {
    CountAgents: unary('CountAgents', (request: { filter: AgentFilterMessage | null }) => ({ count: matching(request.filter).length })),
    ListAgents: unary('ListAgents', (request: { filter: AgentFilterMessage | null, output_mask: AgentMaskMessage | null, page_size: number, page_token: string }) => {
      const page = keyedPage(matching(request.filter), request.page_size, request.page_token, {
        keyOf: agent => idFromProto(agent.id),
        follows: (agent, token) => idFromProto(agent.id) > token
      })
      return { agents: page.items.map(agent => maskAgent(agent, request.output_mask)), next_page_token: page.nextPageToken }
    }),
    GetAgent: unary('GetAgent', (request: { id: SpiffeIdMessage | null, output_mask: AgentMaskMessage | null }) => {
      const id = SpireApiError.within('invalid agent ID', () => agentIdFromProto(deps.trustDomain, request.id))
      if (id !== deps.store.agentId) throw new SpireApiError(status.NOT_FOUND, 'agent not found')
      return maskAgent(described(), request.output_mask)
    })
  }
}

/** SPIRE's filter over attested agents, applied to ours. */
function agentFilter (filter: AgentFilterMessage | null): (agent: AgentMessage) => boolean {
  if (filter === null) return () => true
  // SPIRE checks the selectors given before it looks at any agent; ours has none, so a selector match finds nothing.
  SpireApiError.within('failed to parse selectors', () => filter.by_selector_match?.selectors.forEach(checkSelector))
  return agent =>
    (filter.by_attestation_type === '' || filter.by_attestation_type === agent.attestation_type) &&
    (filter.by_banned === null || filter.by_banned.value === agent.banned) &&
    (filter.by_can_reattest === null || filter.by_can_reattest.value === agent.can_reattest) &&
    // No X509-SVID: its expiry (0) is before any time given; a time SPIRE cannot read is its zero time, before ours.
    (filter.by_expires_before === '' || EXPIRES_BEFORE.test(filter.by_expires_before)) &&
    filter.by_selector_match === null
}

function maskAgent (agent: AgentMessage, mask: AgentMaskMessage | null): AgentMessage {
  if (mask === null) return agent
  return Object.assign({ ...agent }, ...MASKABLE.filter(name => !mask[name]).map(name => ({ [name]: ZERO[name] }))) as AgentMessage
}

/** SPIRE's TrustDomainAgentIDFromProto: an ID in our trust domain under /spire/agent/. */
function agentIdFromProto (trustDomain: string, id: SpiffeIdMessage | null): string {
  const text = idFromProto(id)
  const { trust_domain: name, path } = idToProto(text)
  const quoted = `${JSON.stringify(text)} is not`
  if (name !== trustDomain) throw SpireApiError.invalid(`${quoted} a member of trust domain ${JSON.stringify(trustDomain)}`)
  if (path === '') throw SpireApiError.invalid(`${quoted} an agent in trust domain ${JSON.stringify(trustDomain)}; path is empty`)
  if (!path.startsWith('/spire/agent/')) throw SpireApiError.invalid(`${quoted} an agent in trust domain ${JSON.stringify(trustDomain)}; path is not in the agent namespace`)
  return text
}
