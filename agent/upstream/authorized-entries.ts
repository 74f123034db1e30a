/**
 * The registration entries the upstream SPIRE server authorizes to this device's agent, as SPIRE's agent fetches them
 * (`Entry/GetAuthorizedEntries` over mTLS with the agent X509-SVID; SPIRE pkg/agent/client/client.go). SPIRE
 * answers with the entries parented on the agent ID or on an alias whose selectors the agent has, and with their
 * descendants (pkg/server/authorizedentries): an entry parented on another authorized entry's SPIFFE ID.
 */
import { EntryService } from '../spire-api/grpc-proto'
import type { EntryMessage, SpiffeIdMessage } from '../spire-api/messages'
import type { AgentSvid } from './agent-svid'
import { callUpstream, deadlineAfter, upstreamClient } from './upstream-client'
import type { UpstreamServer } from './server-trust'

/** One authorized entry, as far as the device needs it. */
export interface AuthorizedEntry {
  readonly id: string
  /** `spiffe://<td>/<path>` as SPIRE sent it. */
  readonly spiffeId: string
  readonly parentId: string
  readonly downstream: boolean
}

/**
 * No output mask, on purpose: before 1.14.3 SPIRE answers a masked request with `downstream` copied from `admin`
 * (spiffe/spire#6636), which would hide the device's downstream entry. Whole entries are small.
 */
const REQUEST = {}

/** The entries `server` authorizes to `agent` (within `timeoutMs`, 30 s by default); a refusal is an UpstreamError. */
export async function fetchAuthorizedEntries (server: UpstreamServer, agent: AgentSvid, timeoutMs?: number): Promise<AuthorizedEntry[]> {
  const client = upstreamClient(EntryService, server, agent)
  try {
    const response = await callUpstream<{ entries: EntryMessage[] }>(client, 'GetAuthorizedEntries', REQUEST, deadlineAfter(timeoutMs), server.address)
    return response.entries.map(entry => ({
      id: entry.id,
      spiffeId: idString(entry.spiffe_id),
      parentId: idString(entry.parent_id),
      downstream: entry.downstream
    }))
  } finally {
    client.close()
  }
}

function idString (id: SpiffeIdMessage | null): string {
  return id === null ? '' : `spiffe://${id.trust_domain}${id.path}`
}
