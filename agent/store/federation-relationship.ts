/**
 * Federation relationships (SPIFFE Federation; SPIRE's `federation create`): for another trust domain, where its
 * bundle endpoint is and how to authenticate it. `https_web`: the endpoint's certificate is checked against the
 * Web PKI for the URL's host; `https_spiffe`: it must be an X509-SVID of `endpointSpiffeId`, verified against the
 * latest bundle of that ID's trust domain. A relationship comes from the agent's config file (`source: 'config'`,
 * changed only there) or from an operator at run time (`'api'`: `chaperone federation`, SPIRE's TrustDomain API).
 * validateRelationship applies SPIRE's rules (pkg/server/api/trustdomain.go) with our error codes.
 */
import { ChaperoneError } from '../../spiffe/errors'
import { parseSpiffeId, parseTrustDomain } from '../../spiffe/id'
import type { SpiffeId, TrustDomain } from '../../spiffe/id'

export type BundleEndpointProfileKind = 'https_web' | 'https_spiffe'
export const BUNDLE_ENDPOINT_PROFILES: readonly BundleEndpointProfileKind[] = ['https_web', 'https_spiffe']

export type RelationshipProfile =
  | { readonly kind: 'https_web' }
  | { readonly kind: 'https_spiffe', readonly endpointSpiffeId: SpiffeId }

export type RelationshipSource = 'config' | 'api'

export interface FederationRelationship {
  readonly trustDomain: TrustDomain
  /** An https URL with a host and no user info, as the operator gave it. */
  readonly bundleEndpointUrl: string
  readonly profile: RelationshipProfile
  readonly source: RelationshipSource
  /** Unix seconds. */
  readonly createdAt: number
  readonly updatedAt: number
}

/** What an operator gives; validateRelationship checks it. */
export interface RelationshipInput {
  readonly trustDomain: string
  readonly bundleEndpointUrl: string
  readonly profile: string
  /** `https_spiffe` only. */
  readonly endpointSpiffeId?: string
}

/** What an update may change (SPIRE's input mask: the URL, the profile with its endpoint ID). */
export interface RelationshipPatch {
  readonly bundleEndpointUrl?: string
  readonly profile?: string
  readonly endpointSpiffeId?: string
}

export type RelationshipErrorCode =
  /** A trust domain, URL, profile or endpoint SPIFFE ID that breaks a rule. */
  | 'ERR_RELATIONSHIP_INVALID'
  /** No relationship with that trust domain. */
  | 'ERR_RELATIONSHIP_NOT_FOUND'
  /** Creating one that exists already. */
  | 'ERR_RELATIONSHIP_EXISTS'
  /** Changing or deleting at run time one that the agent's config file defines. */
  | 'ERR_RELATIONSHIP_FROM_CONFIG'

export class RelationshipError extends ChaperoneError<RelationshipErrorCode> {}

export interface RelationshipChange {
  readonly kind: 'relationship-created' | 'relationship-updated' | 'relationship-deleted'
  /** A delete carries the relationship that was deleted. */
  readonly relationship: FederationRelationship
  readonly storeRevision: number
}

export function isRelationshipChange (change: { readonly kind: string }): change is RelationshipChange {
  return change.kind === 'relationship-created' || change.kind === 'relationship-updated' || change.kind === 'relationship-deleted'
}

export interface ValidRelationship {
  readonly trustDomain: TrustDomain
  readonly bundleEndpointUrl: string
  readonly profile: RelationshipProfile
}

/** The relationship an operator described, checked; `own` is the agent's trust domain, which cannot be federated with. */
export function validateRelationship (input: RelationshipInput, own: TrustDomain): ValidRelationship {
  if (typeof input !== 'object' || input === null) throw invalid('a federation relationship must be an object with trustDomain, bundleEndpointUrl and profile')
  const trustDomain = within('the trust domain', () => parseTrustDomain(input.trustDomain))
  if (trustDomain.equals(own)) throw invalid(`${trustDomain.name} is this agent's own trust domain: an agent does not federate with itself`)
  return { trustDomain, bundleEndpointUrl: validateEndpointUrl(input.bundleEndpointUrl), profile: validateProfile(input.profile, input.endpointSpiffeId) }
}

/** An https URL with a host and without user info (SPIRE's rules and messages). */
export function validateEndpointUrl (text: unknown): string {
  if (typeof text !== 'string' || text === '') throw invalid('the bundle endpoint URL is missing')
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw invalid(`failed to parse bundle endpoint URL ${JSON.stringify(text)}`)
  }
  if (url.protocol !== 'https:') throw invalid(`bundle endpoint URL must use the https scheme; got ${JSON.stringify(text)}`)
  if (url.hostname === '') throw invalid(`bundle endpoint URL must specify the host; got ${JSON.stringify(text)}`)
  if (url.username !== '' || url.password !== '') throw invalid('bundle endpoint URL must not contain user info')
  // Kept as the operator wrote it, as SPIRE echoes it back.
  return text
}

/** The profile, with its endpoint SPIFFE ID for https_spiffe (which https_web must not have). */
export function validateProfile (kind: unknown, endpointSpiffeId: unknown): RelationshipProfile {
  if (kind === 'https_web') {
    if (endpointSpiffeId !== undefined && endpointSpiffeId !== '') throw invalid('an endpoint SPIFFE ID belongs to the https_spiffe profile only, not https_web')
    return { kind }
  }
  if (kind === 'https_spiffe') {
    if (typeof endpointSpiffeId !== 'string' || endpointSpiffeId === '') {
      throw invalid('the https_spiffe profile needs the endpoint\'s SPIFFE ID (a SPIRE server\'s is spiffe://<trust domain>/spire/server)')
    }
    return { kind, endpointSpiffeId: within('the endpoint SPIFFE ID', () => parseSpiffeId(endpointSpiffeId)) }
  }
  throw invalid(`the bundle endpoint profile must be ${BUNDLE_ENDPOINT_PROFILES.map(p => `"${p}"`).join(' or ')}; got ${JSON.stringify(kind) ?? typeof kind}`)
}

function within<T> (what: string, parse: () => T): T {
  try {
    return parse()
  } catch (err) {
    throw invalid(`${what} is not valid: ${(err as Error).message}`)
  }
}

function invalid (message: string): RelationshipError {
  return new RelationshipError('ERR_RELATIONSHIP_INVALID', message)
}
