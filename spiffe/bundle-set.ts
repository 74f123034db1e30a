/**
 * A set of bundles keyed by trust domain: our own trust domain's plus every federated one.
 * Lookups are by the credential's trust domain only; bundles of different trust domains are never merged.
 */
import { BundleError } from './errors'
import type { TrustDomain } from './id'
import type { JwtBundleSource, X509BundleSource } from './bundle-source'
import type { SpiffeBundle } from './spiffe-bundle'
import type { X509Bundle } from './x509-bundle'
import type { JwtBundle } from './jwt-bundle'

export class BundleSet implements X509BundleSource, JwtBundleSource, Iterable<SpiffeBundle> {
  readonly #bundles = new Map<string, SpiffeBundle>()

  constructor (bundles: Iterable<SpiffeBundle> = []) {
    for (const bundle of bundles) this.set(bundle)
  }

  /** Adds or replaces the bundle of the bundle's trust domain. */
  set (bundle: SpiffeBundle): void {
    this.#bundles.set(bundle.trustDomain.name, bundle)
  }

  get (trustDomain: TrustDomain): SpiffeBundle | undefined {
    return this.#bundles.get(trustDomain.name)
  }

  /** As get, but a missing bundle is an ERR_BUNDLE_NOT_FOUND error naming the trust domain. */
  require (trustDomain: TrustDomain): SpiffeBundle {
    const bundle = this.get(trustDomain)
    if (bundle === undefined) throw new BundleError('ERR_BUNDLE_NOT_FOUND', `no bundle for trust domain ${trustDomain.name}`)
    return bundle
  }

  has (trustDomain: TrustDomain): boolean {
    return this.#bundles.has(trustDomain.name)
  }

  delete (trustDomain: TrustDomain): boolean {
    return this.#bundles.delete(trustDomain.name)
  }

  get size (): number {
    return this.#bundles.size
  }

  [Symbol.iterator] (): Iterator<SpiffeBundle> {
    return this.#bundles.values()
  }

  getX509Bundle (trustDomain: TrustDomain): X509Bundle | undefined {
    return this.get(trustDomain)?.x509
  }

  getJwtBundle (trustDomain: TrustDomain): JwtBundle | undefined {
    return this.get(trustDomain)?.jwt
  }

  * listX509Bundles (): Iterable<X509Bundle> {
    for (const bundle of this.#bundles.values()) yield bundle.x509
  }
}
