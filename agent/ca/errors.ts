/**
 * The CA's errors: each a CaError with a stable code (README, "Error codes"); the message names the file, field or
 * request value at fault and, where there is one, what the operator can do about it.
 */
import { ChaperoneError } from '../../spiffe'

export type CaErrorCode =
  /** Options given to AgentCa.open are unusable (a TTL that is not a positive whole number, an unknown key type). */
  | 'ERR_CA_OPTIONS_INVALID'
  /** The persisted CA state (state.json or a file it names) is unreadable, malformed or inconsistent. */
  | 'ERR_CA_STATE_INVALID'
  /** The persisted CA state is sound but was made for another configuration (trust domain, upstream or not). */
  | 'ERR_CA_STATE_MISMATCH'
  /** The CA state could not be written (permissions, disk full); the previous state is still in place. */
  | 'ERR_CA_STATE_WRITE_FAILED'
  /** The operator's upstream CA files are unusable (missing, malformed, mismatched, not a CA, expired), or a remote upstream certified an unusable authority. */
  | 'ERR_CA_UPSTREAM_INVALID'
  /** A mint request the CA refuses: another trust domain, no path, bad TTL, DNS name, audience or public key. */
  | 'ERR_CA_REQUEST_INVALID'
  /** The CA was used after close(). */
  | 'ERR_CA_CLOSED'

export class CaError extends ChaperoneError<CaErrorCode> {}
