/**
 * Federated bundles: the bundles of other trust domains that the operator sets (`chaperone bundle set`, like
 * `spire-server bundle set`), handed by the Workload API to workloads whose entries federate with those trust
 * domains (spire-compat.md §4). validateFederatedBundle turns what an operator sent (PEM X.509 authorities, or a
 * SPIFFE bundle document) into the bundle the store keeps, or throws an error with a stable code.
 */
import { BundleError } from '../../spiffe/errors'
import { parseTrustDomain } from '../../spiffe/id'
import type { TrustDomain } from '../../spiffe/id'
import { SpiffeBundle } from '../../spiffe/spiffe-bundle'
import { X509Bundle } from '../../spiffe/x509-bundle'
import { FederatedBundleError } from './errors'

/** pem: CERTIFICATE blocks, the X.509 authorities only; spiffe: the SPIFFE bundle format (X.509 and JWT authorities). */
export type FederatedBundleFormat = 'pem' | 'spiffe'
export const FEDERATED_BUNDLE_FORMATS: readonly FederatedBundleFormat[] = ['pem', 'spiffe']

export interface FederatedBundleInput {
  /** `other.example` or `spiffe://other.example`. */
  readonly trustDomain: string
  readonly format: FederatedBundleFormat
  /** The document's text. */
  readonly bundle: string
}

export interface FederatedBundle {
  readonly trustDomain: TrustDomain
  /** Shared with every listener and caller: read it, never change it. Its `sequence` is the document's, if it had one. */
  readonly bundle: SpiffeBundle
  /** Unix seconds of the set that stored it. */
  readonly updatedAt: number
}

export interface FederatedBundleChange {
  /** A bundle set (new or replaced) or deleted; a delete carries the bundle that was deleted. */
  readonly kind: 'federated-bundle-set' | 'federated-bundle-deleted'
  readonly bundle: FederatedBundle
  /** The store-wide revision this change committed. */
  readonly storeRevision: number
}

/** Whether a store change is of a federated bundle (not of an entry). */
export function isFederatedBundleChange (change: { readonly kind: string }): change is FederatedBundleChange {
  return change.kind === 'federated-bundle-set' || change.kind === 'federated-bundle-deleted'
}

/**
 * The bundle an operator sent, parsed by the SPIFFE bundle code: a trust domain other than the agent's own, at least
 * one X.509 authority or JWT key. Throws ERR_TRUST_DOMAIN_INVALID, ERR_BUNDLE_OWN_TRUST_DOMAIN or ERR_BUNDLE_INVALID.
 */
export function validateFederatedBundle (input: FederatedBundleInput, own: TrustDomain): SpiffeBundle {
  if (typeof input !== 'object' || input === null) throw invalid('a federated bundle must be an object with trustDomain, format and bundle')
  const trustDomain = federatedTrustDomain(input.trustDomain, own)
  const bundle = parseBundleDocument(trustDomain, input.format, input.bundle)
  if (bundle.x509.size === 0 && bundle.jwt.size === 0) {
    throw invalid(`the bundle for ${trustDomain.name} holds no X.509 authority and no JWT key (keys of another "use" are ignored): it would trust nothing`)
  }
  return bundle
}

/** A bundle document an operator sent for a trust domain, in `format`, parsed by the SPIFFE bundle code; throws ERR_BUNDLE_INVALID. */
export function parseBundleDocument (trustDomain: TrustDomain, format: FederatedBundleFormat, text: string): SpiffeBundle {
  if (!FEDERATED_BUNDLE_FORMATS.includes(format)) {
    throw invalid(`the bundle's format must be ${FEDERATED_BUNDLE_FORMATS.map(f => `"${f}"`).join(' or ')}; got ${JSON.stringify(format) ?? typeof format}`)
  }
  if (typeof text !== 'string' || text.trim() === '') throw invalid(`the bundle for ${trustDomain.name} is empty`)
  return format === 'pem'
    ? new SpiffeBundle(trustDomain, { x509: X509Bundle.fromPem(trustDomain, text) })
    : SpiffeBundle.parse(trustDomain, text)
}

/** A trust domain a federated bundle may be held for: valid, and not the agent's own (whose bundle is the CA's). */
export function federatedTrustDomain (text: string, own: TrustDomain): TrustDomain {
  const trustDomain = parseTrustDomain(text)
  if (trustDomain.equals(own)) {
    throw new FederatedBundleError('ERR_BUNDLE_OWN_TRUST_DOMAIN', `${trustDomain.idString} is this agent's own trust domain: ` +
      'its bundle is the CA\'s (`chaperone bundle show` without --id), not a federated one')
  }
  return trustDomain
}

function invalid (message: string): BundleError {
  return new BundleError('ERR_BUNDLE_INVALID', message)
}
