/**
 * How a delegate names the workload whose identity it asks for: a PID the agent attests itself, or selectors the
 * agent takes as attested (SPIRE: "must provide either selectors or non-zero PID, but not both"). With a PID, the
 * delegate must make sure the PID is not recycled while it uses what the agent sent (e.g. by holding a pidfd).
 */
import { DelegatedIdentityApiError } from './delegated-identity-api-error'

export interface Selector {
  /** e.g. `unix`, `k8s`, `docker`. */
  readonly type: string
  /** e.g. `uid:1000`. */
  readonly value: string
}

export type DelegatedWorkload = { readonly pid: number } | { readonly selectors: readonly Selector[] }

/** The request fields naming `workload` (proto3: pid 0 and no selectors mean "not given"). */
export interface WorkloadRequestFields {
  pid: number
  selectors: Selector[]
}

const MAX_PID = 2 ** 31 - 1

function invalid (why: string): DelegatedIdentityApiError {
  return new DelegatedIdentityApiError('ERR_DELEGATED_IDENTITY_API_INVALID_REQUEST', `invalid delegated workload: ${why}`)
}

/** Checks `workload` as SPIRE would (pid, or selectors with a type without ':' and a value) and makes its request fields. */
export function workloadRequestFields (workload: DelegatedWorkload): WorkloadRequestFields {
  const pid = (workload as { pid?: unknown }).pid
  const selectors = (workload as { selectors?: unknown }).selectors
  if ((pid === undefined) === (selectors === undefined)) throw invalid('name it by a pid or by selectors, not both and not neither')
  if (pid !== undefined) {
    if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0 || pid > MAX_PID) throw invalid(`pid must be a positive 32-bit integer, not ${JSON.stringify(pid) ?? typeof pid}`)
    return { pid, selectors: [] }
  }
  if (!Array.isArray(selectors) || selectors.length === 0) throw invalid('selectors must be a non-empty list')
  return {
    pid: 0,
    selectors: (selectors as unknown[]).map((selector, i) => {
      const { type, value } = (selector ?? {}) as { type?: unknown, value?: unknown }
      if (typeof type !== 'string' || type === '' || type.includes(':')) throw invalid(`selector ${i} needs a type without ':' (e.g. "unix")`)
      if (typeof value !== 'string' || value === '') throw invalid(`selector ${i} (${type}) needs a value (e.g. "uid:1000")`)
      return { type, value }
    })
  }
}

/** For messages: `pid 1234`, or `selectors unix:uid:1000, unix:gid:1000`. */
export function describeWorkload (workload: DelegatedWorkload): string {
  return 'pid' in workload ? `pid ${workload.pid}` : `selectors ${workload.selectors.map(s => `${s.type}:${s.value}`).join(', ')}`
}
