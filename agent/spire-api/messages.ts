/**
 * The SPIRE server API's messages (proto/types.proto, proto/entry.proto, …) as grpc-js hands them over and takes
 * them back: field names as in the .proto, int64s as numbers, enums as their names, an unset message field as null,
 * the member of a oneof that is not set as absent (undefined).
 */

export interface SpiffeIdMessage {
  trust_domain: string
  path: string
}

export interface SelectorMessage {
  type: string
  value: string
}

export type MatchBehavior = 'MATCH_EXACT' | 'MATCH_SUBSET' | 'MATCH_SUPERSET' | 'MATCH_ANY'

export interface SelectorMatchMessage {
  selectors: SelectorMessage[]
  match: MatchBehavior
}

export interface FederatesWithMatchMessage {
  trust_domains: string[]
  match: MatchBehavior
}

export interface StatusMessage {
  code: number
  message: string
}

export interface EntryMessage {
  id: string
  spiffe_id: SpiffeIdMessage | null
  parent_id: SpiffeIdMessage | null
  selectors: SelectorMessage[]
  x509_svid_ttl: number
  federates_with: string[]
  admin: boolean
  downstream: boolean
  expires_at: number
  dns_names: string[]
  revision_number: number
  store_svid: boolean
  jwt_svid_ttl: number
  hint: string
  created_at: number
}

/** The Entry fields a mask names: every field but id. */
export type MaskableField = Exclude<keyof EntryMessage, 'id'>

export type EntryMaskMessage = Record<MaskableField, boolean>

export interface EntryFilterMessage {
  by_spiffe_id: SpiffeIdMessage | null
  by_parent_id: SpiffeIdMessage | null
  by_selectors: SelectorMatchMessage | null
  by_federates_with: FederatesWithMatchMessage | null
  by_hint: { value: string } | null
  by_downstream: { value: boolean } | null
}

export interface ListEntriesRequest {
  filter: EntryFilterMessage | null
  output_mask: EntryMaskMessage | null
  page_size: number
  page_token: string
}

export interface GetEntryRequest {
  id: string
  output_mask: EntryMaskMessage | null
}

export interface BatchCreateEntryRequest {
  entries: EntryMessage[]
  output_mask: EntryMaskMessage | null
}

export interface BatchUpdateEntryRequest {
  entries: EntryMessage[]
  input_mask: EntryMaskMessage | null
  output_mask: EntryMaskMessage | null
}

export interface BatchDeleteEntryRequest {
  ids: string[]
}

/** One result of a batch: its status, and the entry (create, update) or the ID (delete) it concerns. */
export interface EntryResult {
  status: StatusMessage
  entry?: EntryMessage
}

export interface DeleteResult {
  status: StatusMessage
  id: string
}

export interface X509CertificateMessage {
  asn1: Buffer
  tainted: boolean
}

export interface JwtKeyMessage {
  public_key: Buffer
  key_id: string
  expires_at: number
  tainted: boolean
}

export interface BundleMessage {
  trust_domain: string
  x509_authorities: X509CertificateMessage[]
  jwt_authorities: JwtKeyMessage[]
  refresh_hint: number
  sequence_number: number
}

/** The Bundle fields a mask names: every field but trust_domain. */
export type BundleMaskMessage = Record<Exclude<keyof BundleMessage, 'trust_domain'>, boolean>

export interface AppendBundleRequest {
  x509_authorities: X509CertificateMessage[]
  jwt_authorities: JwtKeyMessage[]
  output_mask: BundleMaskMessage | null
}

export type BundleDeleteMode = 'RESTRICT' | 'DELETE' | 'DISSOCIATE'

/** One result of a federated bundle batch: its status, and the bundle (create, update, set) it concerns. */
export interface BundleResult {
  status: StatusMessage
  bundle?: BundleMessage
}

export interface BundleDeleteResult {
  status: StatusMessage
  trust_domain: string
}

export interface AgentMessage {
  id: SpiffeIdMessage | null
  attestation_type: string
  x509svid_serial_number: string
  x509svid_expires_at: number
  selectors: SelectorMessage[]
  banned: boolean
  can_reattest: boolean
}

export type AgentMaskMessage = Record<Exclude<keyof AgentMessage, 'id'>, boolean>

export interface AgentFilterMessage {
  by_attestation_type: string
  by_selector_match: SelectorMatchMessage | null
  by_banned: { value: boolean } | null
  by_can_reattest: { value: boolean } | null
  by_expires_before: string
}

/** A oneof's members as grpc-js hands them over: the one set present, and its name under the oneof's; others absent. */
export interface FederationRelationshipMessage {
  trust_domain: string
  bundle_endpoint_url: string
  bundle_endpoint_profile?: 'https_web' | 'https_spiffe'
  https_web?: Record<string, never>
  https_spiffe?: { endpoint_spiffe_id: string }
  trust_domain_bundle: BundleMessage | null
}

/** The FederationRelationship fields a mask names: every field but trust_domain (the profile is its oneof). */
export type FederationRelationshipMaskMessage = Record<'bundle_endpoint_url' | 'bundle_endpoint_profile' | 'trust_domain_bundle', boolean>

/** One result of a federation relationship batch: its status, and the relationship (create, update) it concerns. */
export interface FederationRelationshipResult {
  status: StatusMessage
  federation_relationship?: FederationRelationshipMessage
}

export interface FederationRelationshipDeleteResult {
  status: StatusMessage
  trust_domain: string
}
