/**
 * Attesting this device to an upstream SPIRE server, as SPIRE's own agent does at its first start: check the server
 * is `spiffe://<td>/spire/server` under the trust bundle, make a fresh agent key and CSR, run AttestAgent with a node
 * attestor (x509pop with the birth certificate), and accept the agent X509-SVID it returns.
 */
import { AgentAttestationService } from '../spire-api/grpc-proto'
import { newAgentKey } from './agent-key'
import { acceptAgentSvid } from './agent-svid'
import type { AgentSvid } from './agent-svid'
import { exchangeAttestAgent } from './attest-agent-exchange'
import type { NodeAttestor } from './node-attestor'
import { checkUpstreamServer, upstreamChannel } from './server-trust'
import type { UpstreamServer } from './server-trust'

export interface AttestAgentOptions {
  readonly server: UpstreamServer
  readonly attestor: NodeAttestor
  /** For the whole attestation, TLS check included; 30 s by default. */
  readonly timeoutMs?: number
}

const DEFAULT_TIMEOUT_MS = 30_000

/** The agent X509-SVID, or an UpstreamError whose code says which step failed and why. */
export async function attestAgent (options: AttestAgentOptions): Promise<AgentSvid> {
  const { server, attestor } = options
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const deadline = new Date(Date.now() + timeoutMs)
  await checkUpstreamServer(server, timeoutMs)
  const key = await newAgentKey()
  const channel = upstreamChannel(server)
  const client = new (AgentAttestationService())(server.address, channel.credentials, channel.options)
  try {
    const result = await exchangeAttestAgent(client, attestor, key.csr, deadline, server.address)
    return acceptAgentSvid(result, key.privateKey, server.bundle)
  } finally {
    client.close()
  }
}
