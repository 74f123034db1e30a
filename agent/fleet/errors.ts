/**
 * Errors of the upstream role, where devices attest to this agent as they would to a SPIRE server. One code per
 * meaning (README, "Error codes"); a refusal keeps SPIRE's own wording in its message, and the gRPC status SPIRE
 * answers with, so operators and SPIRE agents see what a SPIRE server would have said.
 */
import type { status } from '@grpc/grpc-js'
import { ChaperoneError } from '../../spiffe/errors'

export type FleetErrorCode =
  /** The agent's `fleet:` settings name a manufacturers' roots file that cannot be read or holds no certificate. */
  | 'ERR_FLEET_CONFIG_INVALID'
  /** The x509pop payload is refused before any trust decision: not Go's JSON shape, no certificate, one that does not
   * parse, more intermediates than allowed, an RSA key over the size limit (SPIRE: InvalidArgument). */
  | 'ERR_X509POP_PAYLOAD_INVALID'
  /** The birth certificate does not verify to a manufacturer root: "certificate verification failed: …" (PermissionDenied). */
  | 'ERR_X509POP_CERT_UNTRUSTED'
  /** The trusted birth certificate cannot prove possession: no digitalSignature key usage, or a key type x509pop does
   * not challenge (SPIRE: Internal "unable to generate challenge: …"). */
  | 'ERR_X509POP_CERT_UNUSABLE'
  /** The challenge response is not Go's JSON shape (SPIRE: InvalidArgument "unable to unmarshal challenge response: …"). */
  | 'ERR_X509POP_RESPONSE_INVALID'
  /** The response does not prove the key: wrong kind, a nonce not 32 bytes, a signature that does not verify
   * (PermissionDenied "challenge response verification failed: …"). */
  | 'ERR_X509POP_PROOF_FAILED'
  /** A fleet admin call (`chaperone fleet …`) to an agent without the upstream role (no `fleet:` settings). */
  | 'ERR_FLEET_NOT_CONFIGURED'
  /** A device registration is refused: no selector, a selector that is not x509pop's, selectors and a birth
   * certificate together, or an ID outside the trust domain or in SPIRE's reserved /spire namespace. */
  | 'ERR_FLEET_REGISTRATION_INVALID'
  /** The birth certificate given to register a device cannot be read, holds no PEM certificate, or does not parse. */
  | 'ERR_FLEET_BIRTH_CERT_INVALID'

export class FleetError extends ChaperoneError<FleetErrorCode> {}

/** A device's x509pop attestation refused, with the gRPC status SPIRE's x509pop server plugin answers with. */
export class X509popRefusal extends FleetError {
  readonly grpcCode: status

  constructor (code: FleetErrorCode, grpcCode: status, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
    this.grpcCode = grpcCode
  }
}
