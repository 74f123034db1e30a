/** Workload API response messages (spiffe/workload.proto), built from the agent's state. Maps are keyed by trust domain ID. */
import type { Logger } from 'pino'
import type { SpiffeBundle } from '../../spiffe/spiffe-bundle'
import type { JwtBundlesResponseMessage, X509BundlesResponseMessage, X509SvidResponseMessage } from '../../spiffe/workload-messages'
import type { CachedSvid } from './svid-cache'

/** X509SVIDResponse: every SVID (the first is the default identity), each with its trust domain's bundle. */
export function x509SvidResponse (svids: readonly CachedSvid[], bundle: SpiffeBundle, logger: Logger): X509SvidResponseMessage {
  const bundleDer = bundle.x509.toDer()
  return {
    svids: uniqueHints(svids, logger).map(svid => ({ spiffe_id: svid.spiffeId, x509_svid: svid.chainDer, x509_svid_key: svid.keyDer, bundle: bundleDer, hint: svid.hint })),
    crl: [],
    federated_bundles: {}
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

export function x509BundlesResponse (bundle: SpiffeBundle): X509BundlesResponseMessage {
  return { crl: [], bundles: { [bundle.trustDomain.idString]: bundle.x509.toDer() } }
}

/**
 * JWTBundlesResponse: a plain JWK Set per trust domain, keys without `use`, as SPIRE's agent sends it (go-spiffe's
 * jwtbundle.Marshal). `use: "jwt-svid"` belongs to the SPIFFE bundle format, and generic JOSE libraries such as
 * jose skip keys whose `use` is not "sig", so the wire form leaves it out.
 */
export function jwtBundlesResponse (bundle: SpiffeBundle): JwtBundlesResponseMessage {
  const keys = bundle.jwt.toJwks().keys.map(({ use: _use, ...key }) => key)
  return { bundles: { [bundle.trustDomain.idString]: Buffer.from(JSON.stringify({ keys })) } }
}
