/**
 * The X509-SVID of an entry authorized to this agent, as SPIRE's agent gets its workloads' SVIDs
 * (`SVID/BatchNewX509SVID` with one {entry_id, csr} item, over mTLS with the agent X509-SVID). The key is fresh and
 * stays in memory; the CSR carries only it. The SVID is accepted as the agent's was (agent-svid.ts): it verifies to the
 * trust bundle, names the ID the result says, which must be the entry's, and certifies our key.
 */
import { status } from '@grpc/grpc-js'
import type { KeyObject } from 'node:crypto'
import type { SpiffeId } from '../../spiffe/id'
import type { StatusMessage } from '../spire-api/messages'
import { SvidClientService } from '../spire-api/grpc-proto'
import { newAgentKey } from './agent-key'
import { acceptSvid } from './agent-svid'
import type { AgentSvid } from './agent-svid'
import type { X509SvidMessage } from './attest-agent-exchange'
import type { AuthorizedEntry } from './authorized-entries'
import { UpstreamError } from './errors'
import { callUpstream, deadlineAfter, upstreamClient, upstreamStatusError } from './upstream-client'
import type { UpstreamServer } from './server-trust'

/** An entry's X509-SVID, e.g. the device's downstream entry's, which NewDownstreamX509CA takes as the caller. */
export interface EntrySvid {
  readonly entryId: string
  readonly id: SpiffeId
  /** DER, the SVID first, then the server's intermediates (never the root). */
  readonly chain: readonly Buffer[]
  /** Made for this SVID; only ever in memory. */
  readonly key: KeyObject
  readonly expiresAt: Date
}

interface BatchNewX509SvidResponse {
  results: Array<{ status: StatusMessage | null, svid: X509SvidMessage | null }>
}

/** Mints the X509-SVID of `entry`, calling as `agent` (within `timeoutMs`, 30 s by default). */
export async function newEntrySvid (server: UpstreamServer, agent: AgentSvid, entry: AuthorizedEntry, timeoutMs?: number): Promise<EntrySvid> {
  const key = await newAgentKey()
  const client = upstreamClient(SvidClientService, server, agent)
  let response: BatchNewX509SvidResponse
  try {
    response = await callUpstream(client, 'BatchNewX509SVID', { params: [{ entry_id: entry.id, csr: key.csr }] }, deadlineAfter(timeoutMs), server.address)
  } finally {
    client.close()
  }
  const what = `BatchNewX509SVID for entry ${entry.id} (${entry.spiffeId}) on SPIRE server ${server.address}`
  if (response.results.length !== 1) {
    throw new UpstreamError('ERR_UPSTREAM_PROTOCOL', `${what}: ${response.results.length} results for one request`)
  }
  const [{ status: itemStatus, svid }] = response.results
  const code: status = itemStatus?.code ?? status.UNKNOWN
  if (code !== status.OK) throw upstreamStatusError(code, itemStatus?.message ?? '', what)
  if (svid === null || svid.cert_chain.length === 0) throw new UpstreamError('ERR_UPSTREAM_PROTOCOL', `${what}: an OK result without an X509-SVID`)
  const accepted = acceptSvid(svid, key.privateKey, server.bundle, { code: 'ERR_ENTRY_SVID_INVALID', noun: `${what}: the X509-SVID` })
  if (!accepted.id.equals(entry.spiffeId)) {
    throw new UpstreamError('ERR_ENTRY_SVID_INVALID', `${what}: the X509-SVID names ${accepted.id.toString()}, not the entry's ${entry.spiffeId}`)
  }
  return { entryId: entry.id, id: accepted.id, chain: accepted.chain, key: accepted.key, expiresAt: accepted.expiresAt }
}

