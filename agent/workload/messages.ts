/**
 * Workload API response messages (spiffe/workload.proto), built from the agent's state: its own trust domain's
 * bundle and the federated bundles the caller gets (federation.ts). Maps are keyed by trust domain ID.
 */
import type { Logger } from 'pino'
import type { SpiffeBundle } from '../../spiffe/spiffe-bundle'
import type { JwtBundlesResponseMessage, X509BundlesResponseMessage, X509SvidResponseMessage } from '../../spiffe/workload-messages'
import type { CachedSvid } from './svid-cache'

/**
 * X509SVIDResponse: every SVID (the first is the default identity), each with its trust domain's bundle, and the
 * federated bundles' X.509 authorities.
 */
export function x509SvidResponse (svids: readonly CachedSvid[], bundle: SpiffeBundle, federated: readonly SpiffeBundle[], logger: Logger): X509SvidResponseMessage {
  const bundleDer = bundle.x509.toDer()
  return {
    svids: uniqueHints(svids, logger).map(svid => ({ spiffe_id: svid.spiffeId, x509_svid: svid.chainDer, x509_svid_key: svid.keyDer, bundle: bundleDer, hint: svid.hint })),
    crl: [],
    federated_bundles: x509AuthoritiesByTrustDomain(federated)
  }
}

/** Hints are unique within a response (the standard): a later SVID repeating an earlier one's hint is left out. */
export function uniqueHints<T extends { hint: string, spiffeId: string }> (items: readonly T[], logger: Logger): T[] {
  const seen = new Set<string>()
  return items.filter(item => {
    if (item.hint === '') return true
    if (seen.has(item.hint)) {
      logger.warn({ spiffeId: item.spiffeId, hint: item.hint }, 'workload API: two entries of one workload share a hint; the later is left out')
      return false
    }
    seen.add(item.hint)
    return true
  })
}

/** X509BundlesResponse: our trust domain's X.509 authorities and the federated ones, as SPIRE's agent sends them. */
export function x509BundlesResponse (bundle: SpiffeBundle, federated: readonly SpiffeBundle[]): X509BundlesResponseMessage {
  return { crl: [], bundles: x509AuthoritiesByTrustDomain([bundle, ...federated]) }
}

/**
 * JWTBundlesResponse: a plain JWK Set per trust domain, keys without `use`, as SPIRE's agent sends it (go-spiffe's
 * jwtbundle.Marshal). `use: "jwt-svid"` belongs to the SPIFFE bundle format, and generic JOSE libraries such as
 * jose skip keys whose `use` is not "sig", so the wire form leaves it out.
 */
export function jwtBundlesResponse (bundle: SpiffeBundle, federated: readonly SpiffeBundle[]): JwtBundlesResponseMessage {
  return { bundles: jwksByTrustDomain([bundle, ...federated]) }
}

/** Each bundle's JWT keys as a plain JWK Set (keys without `use`, see jwtBundlesResponse), by trust domain ID. */
export function jwksByTrustDomain (bundles: readonly SpiffeBundle[]): Record<string, Buffer> {
  return Object.fromEntries(bundles.map(b => {
    const keys = b.jwt.toJwks().keys.map(({ use: _use, ...key }) => key)
    return [b.trustDomain.idString, Buffer.from(JSON.stringify({ keys }))]
  }))
}

/** Concatenated DER of each bundle's X.509 authorities, by trust domain ID (empty for a bundle of JWT keys only, as in SPIRE). */
export function x509AuthoritiesByTrustDomain (bundles: readonly SpiffeBundle[]): Record<string, Buffer> {
  return Object.fromEntries(bundles.map(b => [b.trustDomain.idString, b.x509.toDer()]))
}
