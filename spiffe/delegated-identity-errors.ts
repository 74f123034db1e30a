/**
 * Delegated Identity API failures as DelegatedIdentityApiErrors with stable codes, each message naming the reason and
 * what to do about it. The statuses and their details are SPIRE's (pkg/agent/api/delegatedidentity/v1/service.go):
 * PermissionDenied "no identity issued" / "caller not configured as an authorized delegate", InvalidArgument
 * "must provide either selectors or non-zero PID, but not both" / "could not parse provided selectors" /
 * "audience must be specified", and "workload attestation failed" (Internal up to 1.13, Unavailable later).
 */
import { status } from '@grpc/grpc-js'
import { DelegatedIdentityApiError } from './delegated-identity-api-error'
import { socketProblem } from './socket-errno'
import { isServiceError } from './workload-errors'

export { DelegatedIdentityApiError } from './delegated-identity-api-error'
export type { DelegatedIdentityApiErrorCode } from './delegated-identity-api-error'

/** The RPCs, as their names appear in messages. */
export type DelegatedIdentityRpc = 'SubscribeToX509SVIDs' | 'SubscribeToX509Bundles' | 'FetchJWTSVIDs' | 'SubscribeToJWTBundles'

const ADD_DELEGATE = 'add its SPIFFE ID to the agent\'s authorized_delegates (SPIRE) / authorizedDelegates (Chaperone)'
const NOT_OPEN = 'the admin socket is not open to this user (SPIRE makes it 0770: run the delegate as the agent\'s user or group)'

/** What to check when the admin socket cannot be reached, from the errno in gRPC's details. */
function unreachable (details: string): string {
  return socketProblem(details, {
    ENOENT: 'the agent may not be running, or its admin socket is not enabled (SPIRE: admin_socket_path) or elsewhere',
    ECONNREFUSED: 'the agent may not be running (a socket file left by a stopped agent?)',
    EACCES: NOT_OPEN,
    EPERM: NOT_OPEN,
    EAGAIN: 'try again'
  }) ?? `${details === '' ? '' : `${details}: `}the agent may not be running or not be ready yet, or the admin socket path is wrong`
}

/** Why the agent refused this process as a delegate, from SPIRE's PermissionDenied details. */
function notADelegate (address: string, rpc: DelegatedIdentityRpc, details: string): string {
  const prefix = `this process is not an authorized delegate of the agent at ${address}`
  if (details === 'no identity issued') {
    const self = `no registration entry matches this process (uid ${process.geteuid?.() ?? '?'}, gid ${process.getegid?.() ?? '?'}), ` +
      `so it has no SPIFFE ID to authorize: register it, then ${ADD_DELEGATE}`
    // FetchJWTSVIDs answers the same words when the delegate is fine but no entry matches the workload it named.
    return rpc === 'FetchJWTSVIDs' ? `${prefix}, or no identity was issued to the workload named: ${self}; or register the workload` : `${prefix}: ${self}`
  }
  return `${prefix}: ${ADD_DELEGATE} (the agent said: ${details === '' ? 'permission denied' : details})`
}

/** What an InvalidArgument from SPIRE asks the caller to change. */
function invalidRequest (details: string): string {
  if (details.includes('audience must be specified')) return `${details}: pass at least one audience`
  if (details.includes('either selectors or non-zero PID')) return `${details}: name the workload by a PID or by selectors`
  if (details.includes('could not parse provided selectors')) return `${details}: each selector needs a type and a value`
  return details === '' ? 'invalid argument' : details
}

/** A gRPC error from `rpc` at `address` as a DelegatedIdentityApiError; the original error stays as `cause`. */
export function delegatedIdentityApiError (err: unknown, address: string, rpc: DelegatedIdentityRpc): DelegatedIdentityApiError {
  if (err instanceof DelegatedIdentityApiError) return err
  if (!isServiceError(err)) {
    return new DelegatedIdentityApiError('ERR_DELEGATED_IDENTITY_API_FAILED', `Delegated Identity API ${rpc} at ${address}: ${String(err)}`, { cause: err })
  }
  const fail = (code: ConstructorParameters<typeof DelegatedIdentityApiError>[0], message: string): DelegatedIdentityApiError =>
    new DelegatedIdentityApiError(code, message, { cause: err })
  if (err.details === 'workload attestation failed') {
    return fail('ERR_DELEGATED_IDENTITY_API_FAILED', `the agent at ${address} could not attest this process to authorize it as a delegate (${rpc}: workload attestation failed): see the agent's log`)
  }
  switch (err.code) {
    case status.UNAVAILABLE:
      return fail('ERR_DELEGATED_IDENTITY_API_UNAVAILABLE', `cannot reach the Delegated Identity API at ${address}: ${unreachable(err.details)}`)
    case status.PERMISSION_DENIED:
      return fail('ERR_DELEGATED_IDENTITY_API_DENIED', notADelegate(address, rpc, err.details))
    case status.INVALID_ARGUMENT:
      return fail('ERR_DELEGATED_IDENTITY_API_INVALID_REQUEST', `the agent at ${address} rejected ${rpc}: ${invalidRequest(err.details)}`)
    default:
      return fail('ERR_DELEGATED_IDENTITY_API_FAILED', `Delegated Identity API ${rpc} at ${address} failed: ${status[err.code] ?? err.code}${err.details === '' ? '' : ` (${err.details})`}`)
  }
}

/** A message the client could not parse: reported, while the stream it came on stays open (the next state may be fine). */
export function isInvalidResponse (err: Error): boolean {
  return err instanceof DelegatedIdentityApiError && err.code === 'ERR_DELEGATED_IDENTITY_API_RESPONSE_INVALID'
}

/** What a call on a closed DelegatedIdentityClient gets. */
export function clientClosed (address: string): DelegatedIdentityApiError {
  return new DelegatedIdentityApiError('ERR_DELEGATED_IDENTITY_API_CLOSED', `the DelegatedIdentityClient for ${address} was closed`)
}
