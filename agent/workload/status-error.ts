/** gRPC status errors of the Workload API, with the standard's codes (SPIFFE_Workload_API.md §5 and spiffe-facts). */
import { Metadata, status } from '@grpc/grpc-js'
import type { ServiceError } from '@grpc/grpc-js'
import { statusDetails } from '../status-details'

/** A status error; a message echoing a huge input is cut (statusDetails). */
export function statusError (code: status, message: string): ServiceError {
  const details = statusDetails(message)
  return Object.assign(new Error(details), { code, details, metadata: new Metadata() })
}

export const NO_IDENTITY = (): ServiceError => statusError(status.PERMISSION_DENIED, 'no identity issued')
