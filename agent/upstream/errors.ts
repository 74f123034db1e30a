/**
 * Errors of the device role towards an upstream SPIRE server: reaching it, knowing it is the SPIRE server of our
 * trust domain, proving the device's birth certificate (x509pop) and what the server answers. One code per meaning
 * (README, "Error codes"); a refusal by the server keeps SPIRE's own reason in the message.
 */
import { ChaperoneError } from '../../spiffe/errors'

export type UpstreamErrorCode =
  /** The server's address is not host:port. */
  | 'ERR_UPSTREAM_ADDRESS'
  /** No connection to the server's address (refused, unroutable, closed before any answer). */
  | 'ERR_UPSTREAM_UNREACHABLE'
  /** The server is not `spiffe://<td>/spire/server` under the trust bundle: chain or ID wrong. */
  | 'ERR_UPSTREAM_IDENTITY'
  /** The server did not finish within the deadline. */
  | 'ERR_UPSTREAM_TIMEOUT'
  /** The server broke the exchange: a step out of order, a message missing its parts. */
  | 'ERR_UPSTREAM_PROTOCOL'
  /** The server refused the attestation (PermissionDenied); the message carries SPIRE's reason. */
  | 'ERR_NODE_ATTESTATION_DENIED'
  /** The server failed the attestation with another status (InvalidArgument, Internal, …), SPIRE's reason kept. */
  | 'ERR_NODE_ATTESTATION_FAILED'
  /** The birth certificate or its key cannot be used for x509pop (unparsable, mismatched, unsupported key). */
  | 'ERR_X509POP_CREDENTIAL_INVALID'
  /** The server's x509pop challenge is malformed (not JSON, wrong key type, a nonce that is not 32 bytes). */
  | 'ERR_X509POP_CHALLENGE_INVALID'
  /** The agent X509-SVID the server returned does not verify, is not for our key, or names another ID. */
  | 'ERR_AGENT_SVID_INVALID'

export class UpstreamError extends ChaperoneError<UpstreamErrorCode> {}
