/**
 * The Delegated Identity API's responses (spiffe/delegated-identity.proto), built as SPIRE's agent builds them:
 * SVIDs as SPIRE's types (the SPIFFE ID in parts, the chain DER leaf first with its intermediates, the key PKCS#8 DER),
 * trust domains named by their ID (`spiffe://td`), bundles as the Workload API carries them (concatenated DER of
 * the X.509 authorities; a plain JWK Set without `use`).
 */
import type { SpiffeBundle } from '../../spiffe/spiffe-bundle'
import { x509SvidToProto } from '../spire-api/svid-mapping'
import type { X509SvidMessage } from '../spire-api/svid-mapping'
import type { CachedSvid } from '../workload/svid-cache'
import { jwksByTrustDomain, x509AuthoritiesByTrustDomain } from '../workload/messages'

export interface X509SvidsResponseMessage {
  x509_svids: Array<{ x509_svid: X509SvidMessage, x509_svid_key: Buffer }>
  /** The trust domain IDs of the federated bundles the SVIDs' entries federate with, sorted. */
  federates_with: string[]
}

/** Every SVID with its key, and the trust domains whose bundles the workload's entries federate with. */
export function x509SvidsResponse (svids: readonly CachedSvid[], federated: readonly SpiffeBundle[]): X509SvidsResponseMessage {
  return {
    x509_svids: svids.map(svid => ({ x509_svid: x509SvidToProto(svid.spiffeId, svid, svid.hint), x509_svid_key: svid.keyDer })),
    federates_with: federated.map(bundle => bundle.trustDomain.idString).sort()
  }
}

/** Our own bundle's and every federated bundle's X.509 authorities, by trust domain ID. */
export function x509BundlesResponse (bundles: readonly SpiffeBundle[]): { ca_certificates: Record<string, Buffer> } {
  return { ca_certificates: x509AuthoritiesByTrustDomain(bundles) }
}

/** Our own bundle's and every federated bundle's JWT keys, as JWK Sets by trust domain ID. */
export function jwtBundlesResponse (bundles: readonly SpiffeBundle[]): { bundles: Record<string, Buffer> } {
  return { bundles: jwksByTrustDomain(bundles) }
}
