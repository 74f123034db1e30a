/**
 * agent/store/ — the agent's registration store: which SPIFFE ID each workload gets, as registration entries with
 * selectors, the bundles of the trust domains they federate with, and the authorities appended to our own trust
 * domain's bundle beside the CA's (composed with the CA's into the bundle everything serves), kept durably in SQLite
 * (`<dataDir>/registrations.sqlite3`), and, for the upstream role, the agents attested to this one (SPIRE's attested
 * nodes). It validates entries, selectors and bundles, answers the Workload API's question "which entries match these
 * selectors?" and an attested agent's "which entries may I fetch?" with indexed lookups, announces every change in
 * commit order, keeps a little metadata for the CA, and refuses any file that is not a healthy store of its own
 * without ever touching it. One agent at a time: the file is locked while open.
 */
export { RegistrationStore } from './registration-store'
export type { RegistrationStoreOptions, EntryFilter } from './registration-store'
export type { RegistrationEntry, EntryInput, EntryPatch, EntryChange, EntryCreateOptions, EntryWriteOptions, SelectorSyntax } from './entry'
export type { CreatedEntry } from './entry-table'
export type { StoreChange, ChangeListener } from './change-feed'
export { isFederatedBundleChange, parseBundleDocument } from './federated-bundle'
export type { FederatedBundle, FederatedBundleChange, FederatedBundleFormat, FederatedBundleInput } from './federated-bundle'
export { authorityName, isAppendedAuthoritiesChange, isUnexpired, publicKeyDer } from './appended-authority'
export type {
  AppendedAuthorities, AppendedAuthoritiesChange, AppendedAuthority, AppendedJwtAuthority, AppendedX509Authority, AuthoritiesInput, AuthorityRef, JwtAuthorityInput
} from './appended-authority'
export type { AppendResult, RemoveResult } from './authority-merge'
export { nextExpiry } from './own-bundle'
export { MAX_TTL_SECONDS, MAX_HINT_LENGTH } from './entry'
export { parseSelector, formatSelector } from './selectors'
export type { Selector } from './selectors'
export { isAttestedAgentChange } from './attested-agent'
export type { AgentDenialReason, AgentSvidCheck, AttestationInput, AttestedAgent, AttestedAgentChange, PresentedSvid } from './attested-agent'
export { isRelationshipChange, RelationshipError, BUNDLE_ENDPOINT_PROFILES, validateRelationship } from './federation-relationship'
export type { FederationRelationship, RelationshipChange, RelationshipInput, RelationshipPatch, RelationshipProfile, RelationshipSource, BundleEndpointProfileKind, RelationshipErrorCode } from './federation-relationship'
export type { BootstrapBundle, RelationshipDeleted } from './federation-relationships'
export { EntryError, StoreError, FederatedBundleError, AuthorityError, AgentError } from './errors'
export type { EntryErrorCode, StoreErrorCode, FederatedBundleErrorCode, AuthorityErrorCode, AgentErrorCode } from './errors'
export { STORE_FILE_NAME } from './store-file'
