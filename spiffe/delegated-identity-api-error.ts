/** The error of every Delegated Identity API client failure, by stable code (delegated-identity-errors.ts maps gRPC failures to it). */
import { ChaperoneError } from './errors'

export type DelegatedIdentityApiErrorCode =
  | 'ERR_DELEGATED_IDENTITY_API_ADDRESS'
  | 'ERR_DELEGATED_IDENTITY_API_UNAVAILABLE'
  | 'ERR_DELEGATED_IDENTITY_API_DENIED'
  | 'ERR_DELEGATED_IDENTITY_API_INVALID_REQUEST'
  | 'ERR_DELEGATED_IDENTITY_API_RESPONSE_INVALID'
  | 'ERR_DELEGATED_IDENTITY_API_FAILED'
  | 'ERR_DELEGATED_IDENTITY_API_CLOSED'

export class DelegatedIdentityApiError extends ChaperoneError<DelegatedIdentityApiErrorCode> {}
