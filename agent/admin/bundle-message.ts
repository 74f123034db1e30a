/** Bundles, ours and federated ones, as admin.proto's Bundle message. */
import type { SpiffeBundle } from '../../spiffe/spiffe-bundle'
import type { FederatedBundle } from '../store'

/** admin.proto's Bundle, as grpc-js hands it over (keepCase, int64 as numbers). */
export interface BundleMessage {
  trust_domain: string
  pem: string
  spiffe_json: string
  sequence: number
  x509_authority_count: number
  jwt_key_count: number
  updated_at: number
}

/** A bundle as the message; `updatedAt` (unix seconds) for a federated one, 0 for our own. */
export function bundleToMessage (bundle: SpiffeBundle, updatedAt = 0): BundleMessage {
  return {
    trust_domain: bundle.trustDomain.name,
    pem: bundle.x509.toPem(),
    spiffe_json: bundle.marshal(),
    sequence: bundle.sequence ?? 0,
    x509_authority_count: bundle.x509.size,
    jwt_key_count: bundle.jwt.size,
    updated_at: updatedAt
  }
}

export function federatedBundleToMessage (held: FederatedBundle): BundleMessage {
  return bundleToMessage(held.bundle, held.updatedAt)
}
