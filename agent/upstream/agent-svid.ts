/**
 * Accepting an X509-SVID a SPIRE server returned (the agent's from AttestAgent, an entry's from BatchNewX509SVID): it must verify as an X509-SVID to the trust
 * bundle the server was verified with, name the ID the result says, and certify the key we made for it. The
 * device's SVID is only as good as these checks: a server that answers with someone else's certificate is refused.
 */
import { createPublicKey, X509Certificate } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import type { SpiffeId } from '../../spiffe/id'
import { verifyX509Svid } from '../../spiffe/x509-svid'
import type { X509BundleSource } from '../../spiffe/bundle-source'
import type { AttestAgentResult, X509SvidMessage } from './attest-agent-exchange'
import { UpstreamError } from './errors'
import type { UpstreamErrorCode } from './errors'

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

/** An X509-SVID the server minted for a key we made, once checked (acceptSvid). */
export interface AcceptedSvid {
  readonly id: SpiffeId
  readonly chain: readonly Buffer[]
  readonly key: KeyObject
  readonly expiresAt: Date
}

/** Checks the result against `bundle` and our `key`; ERR_AGENT_SVID_INVALID names what is wrong. */
export function acceptAgentSvid (result: AttestAgentResult, key: KeyObject, bundle: X509BundleSource): AgentSvid {
  return { ...acceptSvid(result.svid, key, bundle, { code: 'ERR_AGENT_SVID_INVALID', noun: 'the agent X509-SVID' }), reattestable: result.reattestable }
}

/**
 * Any X509-SVID the server returned for a key we sent (the agent's, an entry's): it verifies to `bundle`, names the ID
 * the message says, and certifies `key`; otherwise `what.code`, with a message naming `what.noun`.
 */
export function acceptSvid (svid: X509SvidMessage, key: KeyObject, bundle: X509BundleSource, what: { code: UpstreamErrorCode, noun: string }): AcceptedSvid {
  const refuse = (message: string, cause?: unknown): UpstreamError => new UpstreamError(what.code, `${what.noun} ${message}`, { cause })
  const chain = svid.cert_chain
  let id: SpiffeId
  try {
    id = verifyX509Svid(chain, bundle)
  } catch (err) {
    throw refuse(`from the server does not verify: ${(err as Error).message}`, err)
  }
  const said = svid.id
  const saidId = said === undefined || said === null ? '(none)' : `spiffe://${said.trust_domain}${said.path}`
  if (!id.equals(saidId)) throw refuse(`names ${id.toString()}, the result says ${saidId}`)
  const leaf = new X509Certificate(chain[0])
  const ours = createPublicKey(key).export({ type: 'spki', format: 'der' })
  if (!leaf.publicKey.export({ type: 'spki', format: 'der' }).equals(ours)) throw refuse('from the server certifies another key than the one we sent')
  return { id, chain: [...chain], key, expiresAt: new Date(leaf.validTo) }
}
