/**
 * The remote upstream's bundle as the CA keeps it (CaSnapshot.upstreamBundle): the trust domain's X.509 roots and
 * JWT authorities as the upstream last gave them, updated piecewise: roots with each certified authority, JWT
 * authorities with each published key, both from GetBundle.
 */
import { SpiffeBundle, X509Bundle } from '../../spiffe'
import type { JwtBundle, TrustDomain } from '../../spiffe'

/** `bundle` with `roots` as its X.509 authorities, its JWT authorities kept. */
export function withRoots (trustDomain: TrustDomain, bundle: SpiffeBundle | undefined, roots: readonly Buffer[]): SpiffeBundle {
  return new SpiffeBundle(trustDomain, { x509: new X509Bundle(trustDomain, roots), ...(bundle === undefined ? {} : { jwt: bundle.jwt }) })
}

/** `bundle` with `jwt` as its JWT authorities, its roots kept. */
export function withJwtAuthorities (trustDomain: TrustDomain, bundle: SpiffeBundle | undefined, jwt: JwtBundle): SpiffeBundle {
  return new SpiffeBundle(trustDomain, { jwt, ...(bundle === undefined ? {} : { x509: bundle.x509 }) })
}
