/**
 * The statuses the Delegated Identity API answers, in SPIRE's words where SPIRE has them
 * (pkg/agent/api/delegatedidentity/v1/service.go, v1.13.3), and ours where we go beyond it (a PID subscription
 * ends when its process does).
 */
import { status } from '@grpc/grpc-js'
import type { ServiceError } from '@grpc/grpc-js'
import { statusError } from '../workload/status-error'

export { NO_IDENTITY } from '../workload/status-error'

export const NOT_A_DELEGATE = (): ServiceError => statusError(status.PERMISSION_DENIED, 'caller not configured as an authorized delegate')

/** SPIRE v1.13.3 answers INTERNAL when it cannot attest the caller (later releases UNAVAILABLE). */
export const ATTESTATION_FAILED = (): ServiceError => statusError(status.INTERNAL, 'workload attestation failed')

export const SELECTORS_OR_PID = (): ServiceError => statusError(status.INVALID_ARGUMENT, 'must provide either selectors or non-zero PID, but not both')

export const UNPARSABLE_SELECTORS = (): ServiceError => statusError(status.INVALID_ARGUMENT, 'could not parse provided selectors')

export const AUDIENCE_REQUIRED = (): ServiceError => statusError(status.INVALID_ARGUMENT, 'audience must be specified')

export const NEGATIVE_PID = (pid: number): ServiceError => statusError(status.INVALID_ARGUMENT, `pid must be a positive process ID, not ${pid}`)

export const NO_SUCH_PROCESS = (pid: number): ServiceError => statusError(status.NOT_FOUND, `process ${pid} does not exist`)

export const PROCESS_EXITED = (pid: number): ServiceError => statusError(status.NOT_FOUND, `process ${pid} has exited`)

export const TOO_MANY_STREAMS = (uid: number, limit: number): ServiceError =>
  statusError(status.RESOURCE_EXHAUSTED, `uid ${uid} has ${limit} delegated identity streams open, the most one uid may hold`)
