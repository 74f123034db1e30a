/**
 * Identifying the caller of a Workload API call: the security header, then attestation of the process on the
 * call's connection, then the PID-reuse check, then the registration entries its selectors earn. The attestation
 * (attestCaller) is shared with the other APIs whose callers the kernel names (the Delegated Identity API).
 */
import { status } from '@grpc/grpc-js'
import type { Metadata } from '@grpc/grpc-js'
import type { Logger } from 'pino'
import type { WorkloadAttestor } from '../attestation'
import type { RegistrationEntry, RegistrationStore, Selector } from '../store'
import type { WorkloadAdmission } from './admission'
import type { ConnectionRegistry } from './connections'
import { WORKLOAD_API_HEADER } from '../../spiffe/workload-proto'
import { NO_IDENTITY, statusError } from './status-error'


export interface Caller {
  readonly pid: number
  readonly uid: number
  readonly selectors: readonly Selector[]
}

export interface CallerDeps {
  readonly connections: Pick<ConnectionRegistry, 'get'>
  readonly admission: WorkloadAdmission
  readonly attestor: WorkloadAttestor
  readonly store: RegistrationStore
  readonly logger: Logger
}

/** SPIFFE_Workload_Endpoint.md §4: every request carries the header, so browsers and SSRF cannot call the API. */
export function checkSecurityHeader (metadata: Metadata): void {
  if (metadata.get(WORKLOAD_API_HEADER)[0] !== 'true') {
    throw statusError(status.INVALID_ARGUMENT, `security header missing from request (${WORKLOAD_API_HEADER}: true)`)
  }
}

/** Why the process on a call's connection could not be attested: each API answers it with its own status. */
export type CallerNotAttested =
  | { readonly failure: 'unknown_connection' }
  | { readonly failure: 'attestation_failed', readonly pid: number, readonly err: unknown }
  | { readonly failure: 'process_changed', readonly pid: number }

/**
 * The process on the connection of a call (by the peer grpc-js reports for it), attested from the kernel's word
 * alone; or why not. The process attested must still be the one that connected: PID reuse would make us describe
 * another.
 */
export async function attestCaller (deps: Pick<CallerDeps, 'connections' | 'attestor'>, peer: string): Promise<Caller | CallerNotAttested> {
  const connection = deps.connections.get(peer)
  if (connection === undefined) return { failure: 'unknown_connection' }
  const { pid, uid } = connection.credentials
  let selectors: Selector[] | undefined
  try {
    selectors = await deps.attestor.attestPinned(connection.pin)
  } catch (err) {
    return { failure: 'attestation_failed', pid, err }
  }
  return selectors === undefined ? { failure: 'process_changed', pid } : { pid, uid, selectors }
}

/** The attested caller of a call; throws the standard status when it cannot be identified. */
export async function identifyCaller (deps: CallerDeps, peer: string, metadata: Metadata): Promise<Caller> {
  checkSecurityHeader(metadata)
  const attested = await attestCaller(deps, peer)
  if (!('failure' in attested)) return attested
  switch (attested.failure) {
    case 'unknown_connection':
      throw statusError(status.UNAVAILABLE, 'the caller\'s connection is not known to the agent')
    case 'attestation_failed':
      deps.logger.warn({ err: attested.err, pid: attested.pid }, 'workload API: attestation failed')
      throw statusError(status.UNAVAILABLE, 'workload attestation failed')
    case 'process_changed':
      deps.logger.warn({ pid: attested.pid }, 'workload API: caller exited or its PID was reused during attestation')
      throw statusError(status.UNAUTHENTICATED, 'the calling process exited or its PID was reused')
  }
}

/**
 * The caller's entries; none is PERMISSION_DENIED "no identity issued". A caller with entries is a registered
 * workload: its uid may then use the descriptors the agent keeps in reserve (admission.ts).
 */
export function entriesOf (deps: Pick<CallerDeps, 'store' | 'admission'>, caller: Caller): RegistrationEntry[] {
  const entries = deps.store.entriesForSelectors(caller.selectors)
  if (entries.length === 0) throw NO_IDENTITY()
  deps.admission.identified(caller.uid)
  return entries
}
