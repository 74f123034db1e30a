/** Errors of federation: the bundle endpoint this agent serves. */
import { ChaperoneError } from '../../spiffe/errors'

export type FederationErrorCode =
  /** The bundle endpoint cannot listen on its address (in use, or not an address of this machine). */
  | 'ERR_BUNDLE_ENDPOINT_LISTEN'
  /** https_web's certificate or key cannot be read or used. */
  | 'ERR_BUNDLE_ENDPOINT_CERT'

export class FederationError extends ChaperoneError<FederationErrorCode> {}
