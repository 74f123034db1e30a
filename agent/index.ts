/**
 * agent/ — the bundled SPIFFE agent: the CA issuing X509-SVIDs and JWT-SVIDs (`ca/`), the registration store in
 * SQLite (`store/`), workload attestation (`attestation/`) and the Workload API server (`workload/`), the admin API
 * and its client (`admin/`), SPIRE's server API on a SPIRE-compatible socket (`spire-api/`), and the process wiring
 * them (`agent.ts`). May import spiffe/ and config/ only; it never imports proxy/ (they meet over the Workload API).
 */
export { Agent } from './agent'
export { loadAgentConfig, AGENT_CONFIG_SCHEMA } from './config'
export type { AgentConfig, AgentConfigFile, AgentFlags } from './config'
export { AgentError } from './errors'
export type { AgentErrorCode } from './errors'
export { AgentCa, CaError } from './ca'
export type { AgentCaOptions, CaStatus, AuthorityStatus, JwtKeyStatus } from './ca'
export { RegistrationStore, EntryError, StoreError, FederatedBundleError, parseSelector, formatSelector } from './store'
export type { RegistrationEntry, EntryInput, EntryPatch, EntryChange, StoreChange, Selector, FederatedBundle, FederatedBundleInput, FederatedBundleFormat } from './store'
export { SpireServerApi } from './spire-api'
export { AdminClient } from './admin/client'
export type { EntryMessage } from './admin/entry-message'
export type { CaStatusMessage, AuthorityMessage } from './admin/ca-message'
export type { BundleMessage } from './admin/bundle-message'
