/**
 * Federation relationships between SPIRE's API (spire.api.types.FederationRelationship) and our store's, as SPIRE's
 * server converts them (api/trustdomain.go ProtoToFederationRelationship, FederationRelationshipToProto): a
 * relationship sent is checked by SPIRE's rules, in its order and words, and its trust_domain_bundle becomes a
 * SPIFFE bundle document for the store as the Bundle service's bundles do (bundle-mapping.ts); a relationship
 * answered carries the bundle held for its trust domain, and only the fields its mask names.
 */
import type { SpiffeBundle } from '../../spiffe/spiffe-bundle'
import type { BootstrapBundle, FederationRelationship, RelationshipInput, RelationshipPatch } from '../store'
import { SpireApiError } from './api-error'
import { bundleToMessage, messageToDocument } from './bundle-mapping'
import type { BundleMessage, FederationRelationshipMaskMessage as Mask, FederationRelationshipMessage } from './messages'
import { idToProto, trustDomainName } from './spire-id'

/** A relationship sent to the API, checked: what the store takes, and the bundle to store with it if one was sent. */
export interface ConvertedRelationship {
  /** Its trust domain as a bare name. */
  readonly input: RelationshipInput
  readonly bundle?: BootstrapBundle
}

/** No mask: every field (SPIRE's AllTrueFederationRelationshipMask). */
const ALL_FIELDS: Readonly<Mask> = Object.freeze({ bundle_endpoint_url: true, bundle_endpoint_profile: true, trust_domain_bundle: true })

/**
 * SPIRE's ProtoToFederationRelationship: every field is checked, whatever an update's input mask says. Throws
 * SpireApiError (INVALID_ARGUMENT) "failed to convert federation relationship: <reason>".
 */
export function messageToRelationship (message: FederationRelationshipMessage | null): ConvertedRelationship {
  return SpireApiError.within('failed to convert federation relationship', () => {
    if (message === null) throw SpireApiError.invalid('missing federation relationship')
    const trustDomain = SpireApiError.within('failed to parse trust domain', () => trustDomainName(message.trust_domain))
    checkEndpointUrl(message.bundle_endpoint_url)
    const input: RelationshipInput = { trustDomain, bundleEndpointUrl: message.bundle_endpoint_url, ...profileOf(message) }
    return message.trust_domain_bundle === null ? { input } : { input, bundle: bootstrapBundle(message.trust_domain_bundle, trustDomain) }
  })
}

/** What an update changes: the fields `mask` names (every one without a mask; the bundle only if one was sent). */
export function relationshipPatch (converted: ConvertedRelationship, mask: Mask | null): { patch: RelationshipPatch, bundle?: BootstrapBundle } {
  const { input, bundle } = converted
  const changed = mask ?? ALL_FIELDS
  const patch: RelationshipPatch = {
    ...changed.bundle_endpoint_url ? { bundleEndpointUrl: input.bundleEndpointUrl } : {},
    ...changed.bundle_endpoint_profile ? { profile: input.profile, ...input.endpointSpiffeId === undefined ? {} : { endpointSpiffeId: input.endpointSpiffeId } } : {}
  }
  return changed.trust_domain_bundle && bundle !== undefined ? { patch, bundle } : { patch }
}

/** SPIRE's FederationRelationshipToProto: the trust domain, and the fields `mask` names (every one without a mask). */
export function relationshipToMessage (relationship: FederationRelationship, bundle: SpiffeBundle | undefined, mask: Mask | null): FederationRelationshipMessage {
  const shown = mask ?? ALL_FIELDS
  const { profile } = relationship
  const profileField = profile.kind === 'https_spiffe' ? { https_spiffe: { endpoint_spiffe_id: profile.endpointSpiffeId.toString() } } : { https_web: {} }
  return {
    trust_domain: relationship.trustDomain.name,
    bundle_endpoint_url: shown.bundle_endpoint_url ? relationship.bundleEndpointUrl : '',
    ...shown.bundle_endpoint_profile ? profileField : {},
    trust_domain_bundle: shown.trust_domain_bundle && bundle !== undefined ? bundleToMessage(bundle) : null
  }
}

/** The oneof bundle_endpoint_profile: https_spiffe with its endpoint's SPIFFE ID (go-spiffe's FromString), or https_web. */
function profileOf (message: FederationRelationshipMessage): Pick<RelationshipInput, 'profile' | 'endpointSpiffeId'> {
  if (message.https_spiffe !== undefined && message.https_spiffe !== null) {
    const id = message.https_spiffe.endpoint_spiffe_id
    SpireApiError.within('failed to parse endpoint SPIFFE ID', () => idToProto(id))
    return { profile: 'https_spiffe', endpointSpiffeId: id }
  }
  if (message.https_web !== undefined && message.https_web !== null) return { profile: 'https_web' }
  // Go's %T of the unset oneof.
  throw SpireApiError.invalid('unsupported bundle endpoint profile type: <nil>')
}

/**
 * SPIRE's checks of the endpoint URL as Go's url.Parse splits it: an https scheme, a host, no user info. What Go
 * would refuse to parse otherwise is left to the store, which parses it as WHATWG URL does (its reason is given).
 */
function checkEndpointUrl (text: string): void {
  const unparsed = (reason: string): SpireApiError => SpireApiError.invalid(`failed to parse bundle endpoint URL: parse ${JSON.stringify(text)}: ${reason}`)
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(text)) throw unparsed('net/url: invalid control character in URL')
  if (text.startsWith(':')) throw unparsed('missing protocol scheme')
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:/.exec(text)?.[0]
  if (scheme?.toLowerCase() !== 'https:') throw SpireApiError.invalid('bundle endpoint URL must use the https scheme')
  const rest = text.slice(scheme.length).replace(/[?#][^]*$/, '')
  const authority = rest.startsWith('//') ? rest.slice(2).split('/')[0] : ''
  const at = authority.lastIndexOf('@')
  if (authority.slice(at + 1) === '') throw SpireApiError.invalid('bundle endpoint URL must specify the host')
  if (at !== -1) throw SpireApiError.invalid('bundle endpoint URL must not contain user info')
}

/** SPIRE's ProtoToBundle, then its check that the bundle is the relationship's trust domain's. */
function bootstrapBundle (bundle: BundleMessage, trustDomain: string): BootstrapBundle {
  const document = SpireApiError.within('failed to parse bundle', () => {
    SpireApiError.within('invalid trust domain', () => trustDomainName(bundle.trust_domain))
    return messageToDocument(bundle)
  })
  if (trustDomainName(bundle.trust_domain) !== trustDomain) {
    throw SpireApiError.invalid(`trust domain bundle (${JSON.stringify(bundle.trust_domain)}) must match the trust domain of the federation relationship (${JSON.stringify(trustDomain)})`)
  }
  return { format: 'spiffe', bundle: document }
}
