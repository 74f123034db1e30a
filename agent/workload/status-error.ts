/** gRPC status errors of the Workload API, with the standard's codes (SPIFFE_Workload_API.md §5 and spiffe-facts). */
import { Metadata, status } from '@grpc/grpc-js'
import type { ServerWritableStream, ServiceError } from '@grpc/grpc-js'
import type { Logger } from 'pino'
import { statusDetails } from '../status-details'

/** A status error; a message echoing a huge input is cut (statusDetails). */
export function statusError (code: status, message: string): ServiceError {
  const details = statusDetails(message)
  return Object.assign(new Error(details), { code, details, metadata: new Metadata() })
}

export const NO_IDENTITY = (): ServiceError => statusError(status.PERMISSION_DENIED, 'no identity issued')

/**
 * An error as the status a client gets: our own statuses as they are, anything else logged (`api` names the API in
 * the line) and UNAVAILABLE.
 */
export function asStatus (err: unknown, logger: Logger, api: string): ServiceError {
  const candidate = err as { code?: unknown, details?: unknown }
  if (typeof candidate.code === 'number' && typeof candidate.details === 'string') return statusError(candidate.code, candidate.details)
  logger.error({ err }, `${api}: request failed`)
  return statusError(status.UNAVAILABLE, 'the agent could not serve the request')
}

/** Ends a server stream with a status: grpc-js ends a stream with the status of an error emitted on it. */
export function endStream (call: ServerWritableStream<unknown, unknown>, err: ServiceError): void {
  call.emit('error', err)
}
