/** Errors of federation's client side: fetching another trust domain's bundle from its bundle endpoint. */
import { ChaperoneError } from '../../spiffe/errors'

/**
 * Why a fetch failed; a stable label (for logs and metrics):
 * - `connect`: no TCP connection, or it broke (or the answer was not HTTP) after the TLS handshake;
 * - `timeout`: no complete answer within the fetch's deadline;
 * - `tls`: the handshake failed, or the server's certificate did not verify (Web PKI, or X509-SVID to the bundle);
 * - `endpoint_id`: https_spiffe: a verified SVID, but not the relationship's endpoint SPIFFE ID;
 * - `no_endpoint_bundle`: https_spiffe: no bundle held for the endpoint's trust domain to verify it with;
 * - `status`: an HTTP status other than 200;
 * - `too_large`: a body over the size limit;
 * - `invalid_bundle`: a body that is not a SPIFFE bundle, or one with no authority at all.
 */
export type BundleFetchFailure =
  | 'connect' | 'timeout' | 'tls' | 'endpoint_id' | 'no_endpoint_bundle' | 'status' | 'too_large' | 'invalid_bundle'

export class BundleFetchError extends ChaperoneError<'ERR_BUNDLE_FETCH_FAILED'> {
  readonly reason: BundleFetchFailure
  readonly url: string

  constructor (url: string, reason: BundleFetchFailure, detail: string, options?: { cause?: unknown }) {
    super('ERR_BUNDLE_FETCH_FAILED', `fetching the bundle from ${url} failed (${reason}): ${detail}`, options)
    this.reason = reason
    this.url = url
  }
}
