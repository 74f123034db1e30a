/**
 * Accepting the agent X509-SVID a SPIRE server returned from AttestAgent: it must verify as an X509-SVID to the trust
 * bundle the server was verified with, name the ID the result says, and certify the key we made for it. The
 * device's SVID is only as good as these checks: a server that answers with someone else's certificate is refused.
 */
import { createPublicKey, X509Certificate } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import type { SpiffeId } from '../../spiffe/id'
import { verifyX509Svid } from '../../spiffe/x509-svid'
import type { X509BundleSource } from '../../spiffe/bundle-source'
import type { AttestAgentResult } from './attest-agent-exchange'
import { UpstreamError } from './errors'

/** The device's identity towards the upstream, as AttestAgent gave it. */
export interface AgentSvid {
  /** `spiffe://<td>/spire/agent/<attestor>/…`, as the server assigned it. */
  readonly id: SpiffeId
  /** DER, the agent's certificate first, then the server's intermediates (never the root). */
  readonly chain: readonly Buffer[]
  /** The private key, made for this attestation; only ever in memory. */
  readonly key: KeyObject
  /** The certificate's NotAfter. */
  readonly expiresAt: Date
  /** Whether the server lets this agent attest again with the same evidence (x509pop: yes). */
  readonly reattestable: boolean
}

/** Checks the result against `bundle` and our `key`; ERR_AGENT_SVID_INVALID names what is wrong. */
export function acceptAgentSvid (result: AttestAgentResult, key: KeyObject, bundle: X509BundleSource): AgentSvid {
  const chain = result.svid.cert_chain
  let id: SpiffeId
  try {
    id = verifyX509Svid(chain, bundle)
  } catch (err) {
    throw new UpstreamError('ERR_AGENT_SVID_INVALID', `the agent X509-SVID from the server does not verify: ${(err as Error).message}`, { cause: err })
  }
  const said = result.svid.id
  const saidId = said === undefined || said === null ? '(none)' : `spiffe://${said.trust_domain}${said.path}`
  if (!id.equals(saidId)) throw new UpstreamError('ERR_AGENT_SVID_INVALID', `the agent X509-SVID names ${id.toString()}, the result says ${saidId}`)
  const leaf = new X509Certificate(chain[0])
  const ours = createPublicKey(key).export({ type: 'spki', format: 'der' })
  if (!leaf.publicKey.export({ type: 'spki', format: 'der' }).equals(ours)) {
    throw new UpstreamError('ERR_AGENT_SVID_INVALID', 'the agent X509-SVID from the server certifies another key than the one we sent')
  }
  return { id, chain: [...chain], key, expiresAt: new Date(leaf.validTo), reattestable: result.reattestable }
}
