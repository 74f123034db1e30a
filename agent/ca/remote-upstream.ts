/**
 * A remote upstream: the fleet's SPIRE server (or a Chaperone fleet agent) that certifies this CA's authorities, as
 * SPIRE's `spire` UpstreamAuthority does for a nested server. The CA makes each key; the upstream certifies it
 * (NewDownstreamX509CA) and says which roots it chains to, and takes our JWT keys (PublishJWTAuthority) into the
 * trust domain's bundle. agent/upstream/ implements it; the CA only needs these calls, checked answers, and keeps
 * what they return on disk (ca-state.ts), so it starts and issues with the upstream unreachable.
 */
import type { KeyObject } from 'node:crypto'
import type { JwtBundle } from '../../spiffe'
import type { KeyPair } from './keys'

export interface SignedAuthority {
  /** DER: the authority's certificate for our key, then the upstream's intermediates (never a root). */
  readonly chain: readonly Buffer[]
  /** DER: the trust domain's X.509 roots the chain leads to. */
  readonly roots: readonly Buffer[]
}

export interface PublishedJwtKey {
  readonly keyId: string
  readonly publicKey: KeyObject
  readonly expiresAt: Date
}

export interface RemoteUpstream {
  /** For logs and errors, e.g. "SPIRE server 10.0.0.1:8081". */
  readonly name: string
  /** Certifies `keys` as an authority of the trust domain for up to `ttlSeconds` (the upstream may cut it shorter). */
  signAuthority: (keys: KeyPair, ttlSeconds: number) => Promise<SignedAuthority>
  /** Publishes a JWT signing key; answers every JWT authority the upstream now holds, ours among them. */
  publishJwtKey: (key: PublishedJwtKey) => Promise<JwtBundle>
}
