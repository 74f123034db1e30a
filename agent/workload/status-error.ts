/** gRPC status errors of the Workload API, with the standard's codes (SPIFFE_Workload_API.md §5 and spiffe-facts). */
import { Metadata, status } from '@grpc/grpc-js'
import type { ServiceError } from '@grpc/grpc-js'

export function statusError (code: status, details: string): ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new Metadata() })
}

export const NO_IDENTITY = (): ServiceError => statusError(status.PERMISSION_DENIED, 'no identity issued')
