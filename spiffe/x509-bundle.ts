/**
 * The X.509 authorities of one trust domain: the roots (and any intermediates the trust domain publishes)
 * that X509-SVIDs of that trust domain must chain to (SPIFFE_Trust_Domain_and_Bundle.md §3).
 */
import type { X509Certificate } from 'node:crypto'
import { BundleError } from './errors'
import type { TrustDomain } from './id'
import type { X509BundleSource } from './bundle-source'
import { parseCertificateCached } from './x509-cert-cache'
import type { ParsedCertificate } from './x509-cert'
import { decodePem, encodePem } from './pem'
import { splitConcatenatedDer } from './der'

export class X509Bundle implements X509BundleSource {
  readonly trustDomain: TrustDomain
  readonly #authorities = new Map<string, ParsedCertificate>()

  constructor (trustDomain: TrustDomain, authorities: Iterable<Uint8Array | X509Certificate> = []) {
    this.trustDomain = trustDomain
    for (const authority of authorities) this.addAuthority(authority)
  }

  /** Reads every CERTIFICATE block of a PEM text; any other block, or none at all, is an error. */
  static fromPem (trustDomain: TrustDomain, pem: string): X509Bundle {
    let blocks
    try {
      blocks = decodePem(pem)
    } catch (err) {
      throw new BundleError('ERR_BUNDLE_INVALID', `X.509 bundle for ${trustDomain.name}: ${(err as Error).message}`, { cause: err })
    }
    if (blocks.length === 0) throw new BundleError('ERR_BUNDLE_INVALID', `X.509 bundle for ${trustDomain.name}: no PEM certificates found`)
    const other = blocks.find(block => block.label !== 'CERTIFICATE')
    if (other !== undefined) {
      throw new BundleError('ERR_BUNDLE_INVALID', `X.509 bundle for ${trustDomain.name}: unexpected PEM block "${other.label}" (only CERTIFICATE blocks belong in a bundle)`)
    }
    return new X509Bundle(trustDomain, blocks.map(block => block.der))
  }

  /** Reads concatenated DER certificates, the Workload API's bundle encoding. */
  static fromDer (trustDomain: TrustDomain, der: Uint8Array): X509Bundle {
    let certs
    try {
      certs = splitConcatenatedDer(der)
    } catch (err) {
      throw new BundleError('ERR_BUNDLE_INVALID', `X.509 bundle for ${trustDomain.name}: malformed DER (${(err as Error).message})`, { cause: err })
    }
    return new X509Bundle(trustDomain, certs)
  }

  /** The authorities, in the order they were added. */
  get authorities (): X509Certificate[] {
    return [...this.#authorities.values()].map(parsed => parsed.x509)
  }

  /** @internal The parsed authorities, for path validation without re-parsing. */
  get parsedAuthorities (): Iterable<ParsedCertificate> {
    return this.#authorities.values()
  }

  get size (): number {
    return this.#authorities.size
  }

  addAuthority (authority: Uint8Array | X509Certificate): void {
    let parsed
    try {
      parsed = parseCertificateCached(authority)
    } catch (err) {
      throw new BundleError('ERR_BUNDLE_INVALID', `X.509 bundle for ${this.trustDomain.name}: certificate ${this.#authorities.size} is malformed (${(err as Error).message})`, { cause: err })
    }
    this.#authorities.set(parsed.x509.fingerprint256, parsed)
  }

  removeAuthority (authority: X509Certificate): boolean {
    return this.#authorities.delete(authority.fingerprint256)
  }

  hasAuthority (authority: X509Certificate): boolean {
    return this.#authorities.has(authority.fingerprint256)
  }

  getX509Bundle (trustDomain: TrustDomain): X509Bundle | undefined {
    return trustDomain.equals(this.trustDomain) ? this : undefined
  }

  toPem (): string {
    return encodePem('CERTIFICATE', this.#ders())
  }

  /** Concatenated DER, as the Workload API's `bundle` fields carry it. */
  toDer (): Buffer {
    return Buffer.concat([...this.#ders()])
  }

  * #ders (): Iterable<Buffer> {
    for (const parsed of this.#authorities.values()) yield parsed.der
  }
}
