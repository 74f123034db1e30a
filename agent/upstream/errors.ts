/**
 * Errors of the device role towards an upstream SPIRE server: reaching it, knowing it is the SPIRE server of our
 * trust domain, proving the device's birth certificate (x509pop), obtaining the device's downstream SVID and CA,
 * publishing its JWT key, and what the server answers. One code per meaning (README, "Error codes"); a refusal by the
 * server keeps SPIRE's own reason in the message.
 */
import { ChaperoneError } from '../../spiffe/errors'

export type UpstreamErrorCode =
  /** The agent's `upstream:` settings name a file that cannot be read or does not hold what it should. */
  | 'ERR_UPSTREAM_CONFIG_INVALID'
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
  /** The server refused a call (PermissionDenied), e.g. NewDownstreamX509CA by a caller without a downstream entry. */
  | 'ERR_UPSTREAM_DENIED'
  /** A call failed with another status (NotFound, Internal, ResourceExhausted, …), SPIRE's reason kept. */
  | 'ERR_UPSTREAM_FAILED'
  /** No `downstream` entry is authorized to this agent: the operator has not registered the device yet. */
  | 'ERR_DOWNSTREAM_ENTRY_MISSING'
  /** More than one `downstream` entry is authorized to this agent; the message names them. */
  | 'ERR_DOWNSTREAM_ENTRY_AMBIGUOUS'
  /** The X509-SVID minted for an entry (BatchNewX509SVID) does not verify, names another ID, or certifies another key. */
  | 'ERR_ENTRY_SVID_INVALID'
  /** The CA NewDownstreamX509CA returned is not a CA for our key and trust domain chaining to the returned roots. */
  | 'ERR_DEVICE_CA_INVALID'
  /**
   * The bundle GetBundle returned is another trust domain's, or holds an authority that cannot be read; or a JWT
   * authority PublishJWTAuthority returned has no key ID or no readable public key.
   */
  | 'ERR_UPSTREAM_BUNDLE_INVALID'
  /** PublishJWTAuthority answered without the device's JWT key: its key ID is missing, or holds another public key. */
  | 'ERR_JWT_AUTHORITY_NOT_PUBLISHED'

export class UpstreamError extends ChaperoneError<UpstreamErrorCode> {}
