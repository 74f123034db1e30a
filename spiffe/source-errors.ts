/**
 * Errors of the sources (X509Source, JwtSource, DelegatedX509Source) themselves, beside the WorkloadApiErrors and
 * DelegatedIdentityApiErrors they pass on.
 */
import { ChaperoneError } from './errors'

export type SourceErrorCode =
  | 'ERR_X509_SOURCE_TIMEOUT'
  | 'ERR_X509_SOURCE_NO_SVID'
  | 'ERR_X509_SOURCE_NO_BUNDLE'
  | 'ERR_X509_SOURCE_WITHDRAWN'
  | 'ERR_SOURCE_CLOSED'

export class SourceError extends ChaperoneError<SourceErrorCode> {}

/** What a call on a closed source gets; `what` names the source (e.g. "X509Source"). */
export function sourceClosed (what: string): SourceError {
  return new SourceError('ERR_SOURCE_CLOSED', `the ${what} was closed`)
}
