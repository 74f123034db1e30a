/**
 * Identifying the caller of a Workload API call: the security header, then attestation of the process on the
 * call's connection, then the PID-reuse check, then the registration entries its selectors earn.
 */
import { status } from '@grpc/grpc-js'
import type { Metadata } from '@grpc/grpc-js'
import type { Logger } from 'pino'
import { isSameProcess } from '../attestation'
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
  readonly connections: ConnectionRegistry
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

/** The attested caller of a call; throws the standard status when it cannot be identified. */
export async function identifyCaller (deps: CallerDeps, peer: string, metadata: Metadata): Promise<Caller> {
  checkSecurityHeader(metadata)
  const connection = deps.connections.get(peer)
  if (connection === undefined) throw statusError(status.UNAVAILABLE, 'the caller\'s connection is not known to the agent')
  let selectors: Selector[]
  try {
    selectors = await deps.attestor.attest(connection.credentials)
  } catch (err) {
    deps.logger.warn({ err, pid: connection.credentials.pid }, 'workload API: attestation failed')
    throw statusError(status.UNAVAILABLE, 'workload attestation failed')
  }
  // The process we attested must still be the one that connected (PID reuse would make us describe another).
  if (!isSameProcess(connection.pin)) {
    deps.logger.warn({ pid: connection.pin.pid }, 'workload API: caller exited or its PID was reused during attestation')
    throw statusError(status.UNAUTHENTICATED, 'the calling process exited or its PID was reused')
  }
  return { pid: connection.credentials.pid, uid: connection.credentials.uid, selectors }
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
