/**
 * SPIRE's server Agent service (spire.api.server.agent.v1.Agent): the agents of this node as SPIRE's server describes
 * its attested agents. First the Chaperone agent itself, so that an orchestrator can learn the parent ID its entries
 * need (RegistrationStore.agentId, spiffe://<td>/spire/agent/chaperone/<node>): its attestation type is "chaperone",
 * as in its ID's path; it holds no X509-SVID of its own (it is the CA), so its serial number is empty and its expiry
 * 0; it has no selectors, is never banned and cannot re-attest. Then, by SPIFFE ID, the agents (devices) attested to
 * it as the fleet's upstream (RegistrationStore.agents), with their attestation type, node selectors, the serial
 * number and expiry of the X509-SVID last issued to them (a banned one's serial number is empty), and whether they
 * re-attest. Count, list and get apply SPIRE's filter (agent-filter.ts), output mask and paging to all of them.
 * DeleteAgent evicts an attested agent (it may attest again) and BanAgent bans one (refused until evicted), each
 * logged with its caller; the Chaperone agent itself is not an attested agent and is refused NOT_FOUND, as SPIRE
 * refuses an agent it has no record of, in words that say why. The other calls (attesting and renewing agents,
 * served on the fleet's port; join tokens) are not in our agent.proto: grpc-js answers UNIMPLEMENTED, naming them.
 */
import { status } from '@grpc/grpc-js'
import type { ServerUnaryCall, UntypedServiceImplementation } from '@grpc/grpc-js'
import type { Logger } from 'pino'
import { AgentError } from '../store'
import type { AttestedAgent, RegistrationStore } from '../store'
import { agentQuery } from './agent-filter'
import { SpireApiError } from './api-error'
import type { CallerRegistry } from './callers'
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

type AgentRequest = { id: SpiffeIdMessage | null }

export function agentHandlers (deps: AgentServiceDeps): UntypedServiceImplementation {
  const { store } = deps
  const { unary, logChanges } = serviceCalls(deps.logger, deps.callers)
  const described = (): AgentMessage => ({ ...ZERO, id: idToProto(store.agentId), attestation_type: ATTESTATION_TYPE })
  /** Every agent, in walk order: ours, then the attested ones by ID (a record under our own ID is not another agent). */
  const all = (): AgentMessage[] => [described(), ...store.agents.list().filter(agent => agent.spiffeId !== store.agentId).map(agentToMessage)]
  /** The walk order as a key: ours first. */
  const order = (id: string): string => id === store.agentId ? '0' : `1${id}`
  const requestedId = (request: AgentRequest): string => SpireApiError.within('invalid agent ID', () => agentIdFromProto(deps.trustDomain, request.id))
  /** DeleteAgent and BanAgent: `change` applied to an attested agent, logged with its caller. */
  const change = (method: string, apply: (id: string) => AttestedAgent) => unary(method, (request: AgentRequest, call: ServerUnaryCall<AgentRequest, object>) => {
    const id = requestedId(request)
    if (id === store.agentId) {
      throw new SpireApiError(status.NOT_FOUND, `agent not found: ${JSON.stringify(id)} is this Chaperone agent itself, not an attested agent; it cannot be banned or deleted`)
    }
    try {
      apply(id)
    } catch (err) {
      if (err instanceof AgentError && err.code === 'ERR_AGENT_NOT_FOUND') throw new SpireApiError(status.NOT_FOUND, 'agent not found')
      if (err instanceof AgentError && err.code === 'ERR_AGENT_INVALID') throw SpireApiError.invalid(err.message)
      throw err
    }
    logChanges(method, call, 'agents', [{ id, code: status.OK }])
    return {}
  })
  return {
    CountAgents: unary('CountAgents', (request: { filter: AgentFilterMessage | null }) => {
      const query = agentQuery(request.filter, 'count')
      return { count: all().filter(agent => query.matches(agent) && query.keeps(agent)).length }
    }),
    ListAgents: unary('ListAgents', (request: { filter: AgentFilterMessage | null, output_mask: AgentMaskMessage | null, page_size: number, page_token: string }) => {
      const query = agentQuery(request.filter, 'list')
      const page = keyedPage(all().filter(query.matches), request.page_size, request.page_token, {
        keyOf: agent => idFromProto(agent.id),
        follows: (agent, token) => order(idFromProto(agent.id)) > order(token),
        keeps: query.keeps
      })
      return { agents: page.items.map(agent => maskAgent(agent, request.output_mask)), next_page_token: page.nextPageToken }
    }),
    GetAgent: unary('GetAgent', (request: AgentRequest & { output_mask: AgentMaskMessage | null }) => {
      const id = requestedId(request)
      const attested = id === store.agentId ? undefined : store.agents.get(id)
      if (id !== store.agentId && attested === undefined) throw new SpireApiError(status.NOT_FOUND, 'agent not found')
      return maskAgent(attested === undefined ? described() : agentToMessage(attested), request.output_mask)
    }),
    DeleteAgent: change('DeleteAgent', id => store.agents.evict(id)),
    BanAgent: change('BanAgent', id => store.agents.ban(id))
  }
}

/** An attested agent as SPIRE's ProtoFromAttestedNode shows it. */
function agentToMessage (agent: AttestedAgent): AgentMessage {
  return {
    id: idToProto(agent.spiffeId),
    attestation_type: agent.attestationType,
    x509svid_serial_number: agent.serialNumber,
    x509svid_expires_at: agent.expiresAt,
    selectors: agent.selectors.map(({ type, value }) => ({ type, value })),
    banned: agent.banned,
    can_reattest: agent.canReattest
  }
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
