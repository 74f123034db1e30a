/**
 * Errors of the registration store: one class for bad entries, one for a store file that cannot be used, one for a
 * federated bundle given for the agent's own trust domain (malformed or unknown bundles are spiffe/'s BundleError),
 * one for the authorities appended to the agent's own trust domain's bundle, one for the agents attested to this one in
 * its upstream role.
 */
import { ChaperoneError } from '../../spiffe/errors'

/** A registration entry (or a selector in it) that cannot be stored, or names an entry that does not exist. */
export type EntryErrorCode =
  | 'ERR_ENTRY_INVALID'
  | 'ERR_SELECTOR_INVALID'
  | 'ERR_ENTRY_DUPLICATE'
  | 'ERR_ENTRY_NOT_FOUND'
  | 'ERR_ENTRY_ID_IN_USE'

export class EntryError extends ChaperoneError<EntryErrorCode> {}

/** Why the store file was refused at open; the file is left exactly as it was found. */
export type StoreErrorCode =
  | 'ERR_STORE_CORRUPT'
  | 'ERR_STORE_FOREIGN'
  | 'ERR_STORE_NEWER'
  | 'ERR_STORE_UNAVAILABLE'
  /** A write failed because the data directory's file system is read-only or full, or not writable (the admin API). */
  | 'ERR_STORE_UNWRITABLE'

export class StoreError extends ChaperoneError<StoreErrorCode> {}

/** A federated bundle set, shown or deleted for the agent's own trust domain, whose bundle is the CA's. */
export type FederatedBundleErrorCode = 'ERR_BUNDLE_OWN_TRUST_DOMAIN'

export class FederatedBundleError extends ChaperoneError<FederatedBundleErrorCode> {}

/** An authority that cannot be appended to our own trust domain's bundle, or removed from it. */
export type AuthorityErrorCode =
  /** Nothing to append, or an authority that does not parse, is not a CA certificate, or has expired. */
  | 'ERR_AUTHORITY_INVALID'
  /** A JWT authority whose key ID the bundle already holds with another key. */
  | 'ERR_AUTHORITY_KEY_ID_IN_USE'
  /** No appended authority has that SHA-256 fingerprint or key ID. */
  | 'ERR_AUTHORITY_NOT_FOUND'
  /** The authority is the CA's own: it leaves the bundle only when the CA drops it. */
  | 'ERR_AUTHORITY_OF_CA'

export class AuthorityError extends ChaperoneError<AuthorityErrorCode> {}

/** An attested agent (SPIRE's attested node) that cannot be recorded, or is unknown. */
export type AgentErrorCode =
  /** An attestation whose agent ID, attestation type, serial number or expiry breaks a rule; or an ID that is not an agent ID of the trust domain. */
  | 'ERR_AGENT_INVALID'
  /** No agent with that SPIFFE ID has attested (or it was evicted). */
  | 'ERR_AGENT_NOT_FOUND'
  /** A banned agent attested again: it stays banned until it is evicted. */
  | 'ERR_AGENT_BANNED'

export class AgentError extends ChaperoneError<AgentErrorCode> {}
