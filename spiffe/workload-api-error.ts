/** The error of every Workload API client failure, by stable code (workload-errors.ts maps gRPC failures to it). */
import { ChaperoneError } from './errors'

export type WorkloadApiErrorCode =
  | 'ERR_WORKLOAD_API_ADDRESS'
  | 'ERR_WORKLOAD_API_UNAVAILABLE'
  | 'ERR_WORKLOAD_API_DENIED'
  | 'ERR_WORKLOAD_API_INVALID_REQUEST'
  | 'ERR_WORKLOAD_API_RESPONSE_INVALID'
  | 'ERR_WORKLOAD_API_FAILED'

export class WorkloadApiError extends ChaperoneError<WorkloadApiErrorCode> {}
