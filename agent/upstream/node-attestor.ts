/**
 * What AttestAgent needs from a node attestor on the device's side (SPIRE's agent NodeAttestor plugin contract, in
 * small): the name the server's attestor is configured under, the first payload, and an answer to each challenge.
 * x509pop is one (x509pop-attestor.ts); tpm_devid would be another.
 */
export interface NodeAttestor {
  /** AttestationData.type: the server's NodeAttestor name, e.g. "x509pop". */
  readonly type: string
  /** AttestationData.payload, sent with the first request. */
  payload: () => Buffer
  /** The challenge_response to one challenge; throws an UpstreamError when the challenge is unusable. */
  respond: (challenge: Buffer) => Buffer
}
