/**
 * The workload a delegate's request names, as SPIRE reads it: selectors the delegate attested itself (taken as they
 * are: "the SPIRE Agent will simply return SVIDs for any workload registration entries that match"), or a PID that
 * the agent attests with its own attestor (unix and docker selectors, as for a Workload API caller). A PID's process
 * is pinned (pid + start time) before it is attested, so that the selectors describe that process and no other,
 * and the pin goes with the subscription: the agent ends it when the process is gone (SPIRE leaves that to the
 * delegate).
 */
import type { Logger } from 'pino'
import { AttestationError, isSameProcess, pinProcess } from '../attestation'
import type { ProcessPin, WorkloadAttestor } from '../attestation'
import { formatSelector } from '../store'
import type { Selector } from '../store'
import { ATTESTATION_FAILED, NEGATIVE_PID, NO_SUCH_PROCESS, PROCESS_EXITED, SELECTORS_OR_PID, UNPARSABLE_SELECTORS } from './statuses'

export interface SelectorMessage {
  type: string
  value: string
}

/** What SubscribeToX509SVIDs and FetchJWTSVIDs name a workload by. */
export interface SubjectRequest {
  selectors: SelectorMessage[]
  pid: number
}

export interface WorkloadSubject {
  readonly selectors: readonly Selector[]
  /** With a PID: the process the selectors were attested from. */
  readonly pin?: ProcessPin
}

/** How many selectors a log line shows of a subject (a request may carry thousands). */
const LOGGED_SELECTORS = 16

/** The subject of a request; throws SPIRE's INVALID_ARGUMENT for a bad one, NOT_FOUND for a PID without a process. */
export async function workloadSubject (request: SubjectRequest, attestor: WorkloadAttestor, logger: Logger): Promise<WorkloadSubject> {
  const { selectors, pid } = request
  // pid 0 is proto3's "not set" (and no workload's PID), so it counts as absent, as in SPIRE.
  if ((selectors.length > 0) === (pid !== 0)) throw SELECTORS_OR_PID()
  if (selectors.length > 0) return { selectors: parseSelectors(selectors) }
  if (pid < 0) throw NEGATIVE_PID(pid)
  let pin: ProcessPin
  try {
    pin = pinProcess(pid)
  } catch (err) {
    if (err instanceof AttestationError) throw NO_SUCH_PROCESS(pid)
    throw err
  }
  let attested: Selector[] | undefined
  try {
    attested = await attestor.attestPinned(pin)
  } catch (err) {
    if (!isSameProcess(pin)) throw PROCESS_EXITED(pid)
    logger.warn({ err, subjectPid: pid }, 'delegated identity API: workload attestation of a PID failed')
    throw ATTESTATION_FAILED()
  }
  if (attested === undefined) throw PROCESS_EXITED(pid)
  return { selectors: attested, pin }
}

/** The subject for a log line: its PID, or (the first of) its selectors. */
export function describeSubject (subject: WorkloadSubject): { subjectPid: number } | { selectors: string[], selectorCount: number } {
  if (subject.pin !== undefined) return { subjectPid: subject.pin.pid }
  return { selectors: subject.selectors.slice(0, LOGGED_SELECTORS).map(formatSelector), selectorCount: subject.selectors.length }
}

/** SPIRE's rule for selectors from its API (api.SelectorsFromProto): a type without ":", a value, neither empty. */
function parseSelectors (messages: readonly SelectorMessage[]): Selector[] {
  return messages.map(({ type, value }) => {
    if (type === '' || type.includes(':') || value === '') throw UNPARSABLE_SELECTORS()
    return Object.freeze({ type, value })
  })
}
