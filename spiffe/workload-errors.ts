/**
 * Workload API failures as ChaperoneErrors with stable codes, each message saying what to check. The gRPC status
 * codes' meanings come from SPIFFE_Workload_API.md (§5.2, §6.2) and SPIRE's behaviour.
 */
import { status } from '@grpc/grpc-js'
import type { ServiceError } from '@grpc/grpc-js'
import { socketProblem } from './socket-errno'
import { WorkloadApiError } from './workload-api-error'

export { WorkloadApiError } from './workload-api-error'
export type { WorkloadApiErrorCode } from './workload-api-error'

/** Whether `err` is a gRPC status error (grpc-js's ServiceError), as opposed to any other failure. */
export function isServiceError (err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === 'number'
}

const PERMISSION = 'the socket or its directory is not open to this user'

/** What to check when the Workload API cannot be reached, from the errno in gRPC's details. */
function unreachable (details: string): string {
  return socketProblem(details, {
    ENOENT: 'the agent may not be running, or its socket is elsewhere',
    ECONNREFUSED: 'the agent may not be running (a socket file left by a stopped agent?)',
    EACCES: PERMISSION,
    EPERM: PERMISSION,
    EAGAIN: 'try again'
  }) ??
    // Also what SPIRE answers while it is starting or when attestation failed, hence "not ready".
    `${details === '' ? '' : `${details}: `}the agent may not be running or not be ready yet, or the socket path is wrong`
}

/** A gRPC error from a call to `address` as a WorkloadApiError; the original error stays as `cause`. */
export function workloadApiError (err: unknown, address: string): WorkloadApiError {
  if (err instanceof WorkloadApiError) return err
  if (!isServiceError(err)) return new WorkloadApiError('ERR_WORKLOAD_API_FAILED', `Workload API at ${address}: ${String(err)}`, { cause: err })
  const details = err.details === '' ? '' : ` (${err.details})`
  switch (err.code) {
    case status.UNAVAILABLE:
      return new WorkloadApiError('ERR_WORKLOAD_API_UNAVAILABLE', `cannot reach the Workload API at ${address}: ${unreachable(err.details)}`, { cause: err })
    case status.PERMISSION_DENIED:
      return new WorkloadApiError('ERR_WORKLOAD_API_DENIED', `no identity issued by the Workload API at ${address}${details}: check that a registration entry exists for this workload and that its selectors match this process (uid, gid, path, …)`, { cause: err })
    case status.INVALID_ARGUMENT:
      return new WorkloadApiError('ERR_WORKLOAD_API_INVALID_REQUEST', `the Workload API at ${address} rejected the request${details}`, { cause: err })
    default:
      return new WorkloadApiError('ERR_WORKLOAD_API_FAILED', `Workload API call to ${address} failed: ${status[err.code] ?? err.code}${details}`, { cause: err })
  }
}
