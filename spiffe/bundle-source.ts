/**
 * Where verifiers find trust: a source answers "which authorities does trust domain X have?".
 * Verification always asks for the bundle of the trust domain named in the credential, never any other
 * (SPIFFE_Trust_Domain_and_Bundle.md §4: bundles of different trust domains are never merged).
 */
import type { TrustDomain } from './id'
import type { X509Bundle } from './x509-bundle'
import type { JwtBundle } from './jwt-bundle'

export interface X509BundleSource {
  /** The X.509 authorities of one trust domain, or undefined when this source knows none. */
  getX509Bundle (trustDomain: TrustDomain): X509Bundle | undefined
  /**
   * Optional: every X.509 bundle the source holds. Used only to explain a rejection ("signed by trust domain B's
   * authority, but the ID names A"); verification itself never consults another trust domain's bundle.
   */
  listX509Bundles? (): Iterable<X509Bundle>
}

export interface JwtBundleSource {
  /** The JWT authorities of one trust domain, or undefined when this source knows none. */
  getJwtBundle (trustDomain: TrustDomain): JwtBundle | undefined
}
