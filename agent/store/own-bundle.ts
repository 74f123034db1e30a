/**
 * Our own trust domain's bundle as everything serves it (the Workload API, SPIRE's GetBundle, `chaperone bundle
 * show`): the CA's authorities, then the appended ones that have not expired, each once. Its sequence number is the
 * CA's plus the appended authorities' revision: both only grow, so the sum grows with every change of either. An
 * appended authority that expires leaves the bundle at its expiry without a new sequence number (SPIRE's server
 * prunes on a timer and bumps it then); watchers are told at that moment all the same (nextExpiry).
 */
import { JwtBundle } from '../../spiffe/jwt-bundle'
import { SpiffeBundle } from '../../spiffe/spiffe-bundle'
import { X509Bundle } from '../../spiffe/x509-bundle'
import { isUnexpired } from './appended-authority'
import type { AppendedAuthorities } from './appended-authority'

/** The bundle of `ca` (the CA's) with the appended authorities unexpired at `now` (unix seconds). */
export function composeOwnBundle (ca: SpiffeBundle, appended: AppendedAuthorities, now: number): SpiffeBundle {
  if (appended.revision === 0) return ca
  const served = appended.authorities.filter(authority => isUnexpired(authority, now))
  const x509 = new X509Bundle(ca.trustDomain, [...ca.x509.authorities, ...served.flatMap(a => a.kind === 'x509' ? [a.der] : [])])
  const jwt = new JwtBundle(ca.trustDomain)
  for (const [kid, jwk] of ca.jwt.keys) jwt.addKey(kid, jwk)
  // The CA's key wins should it ever take an appended key's ID (an append cannot take one of the CA's).
  for (const a of served) if (a.kind === 'jwt' && jwt.findKey(a.keyId) === undefined) jwt.addKey(a.keyId, a.jwk)
  return new SpiffeBundle(ca.trustDomain, {
    x509,
    jwt,
    sequence: (ca.sequence ?? 0) + appended.revision,
    ...ca.refreshHintSeconds === undefined ? {} : { refreshHintSeconds: ca.refreshHintSeconds }
  })
}

/** When the bundle next changes by itself: the earliest expiry after `now` of an appended authority (unix seconds). */
export function nextExpiry (appended: AppendedAuthorities, now: number): number | undefined {
  const expiries = appended.authorities.map(a => a.expiresAt).filter(at => at > now)
  return expiries.length === 0 ? undefined : Math.min(...expiries)
}

/** The composed bundle, made again only when the CA's bundle, the appended authorities or an expiry changes it. */
export class OwnBundleCache {
  #last?: { readonly ca: SpiffeBundle, readonly revision: number, readonly until: number | undefined, readonly bundle: SpiffeBundle }

  get (ca: SpiffeBundle, appended: AppendedAuthorities, now: number): SpiffeBundle {
    const last = this.#last
    if (last !== undefined && last.ca === ca && last.revision === appended.revision && (last.until === undefined || now < last.until)) return last.bundle
    const bundle = composeOwnBundle(ca, appended, now)
    this.#last = { ca, revision: appended.revision, until: nextExpiry(appended, now), bundle }
    return bundle
  }
}
