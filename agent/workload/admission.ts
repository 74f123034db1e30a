/**
 * Who may hold a Workload API connection. The socket is world-connectable (it must be), so any local user could
 * otherwise open connections until the agent runs out of file descriptors and every workload is refused. Each uid
 * may hold at most `maxConnectionsPerUid`; of the process's open-file limit, `reservedDescriptors` are kept for
 * uids the agent has issued an identity to (registered workloads are served during a flood), and the last
 * OWN_FILES for the agent itself (its store, the admin API, the Docker API). Every refusal is counted and logged,
 * at most once per reason per interval (the line says how many were refused meanwhile).
 */
import { readFileSync } from 'node:fs'
import type { Logger } from 'pino'

export interface WorkloadApiLimits {
  /** A connection without a call in progress for this long is closed (one that never calls too). */
  readonly idleTimeoutMs: number
  readonly maxConnectionsPerUid: number
  readonly reservedDescriptors: number
}

export type WorkloadRefusal = 'max_connections_per_uid' | 'reserved_descriptors' | 'open_files_limit' | 'unidentified' | 'no_call'

const WHY: Record<WorkloadRefusal, string> = {
  max_connections_per_uid: 'the uid has workloadApi.maxConnectionsPerUid connections open',
  reserved_descriptors: 'the remaining file descriptors are reserved (workloadApi.reservedDescriptors) for uids the agent has issued an identity to',
  open_files_limit: 'the agent is at its open-files limit',
  unidentified: 'the kernel could not say which process connected',
  no_call: 'the connection made no call within workloadApi.idleTimeout'
}

/** Descriptors never given to Workload API connections: the agent's own files and sockets. */
const OWN_FILES = 64
/** Uids remembered as identified; beyond this the set starts again (a uid is re-learnt at its next call). */
const MAX_IDENTIFIED_UIDS = 65_536
const LOG_INTERVAL_MS = 10_000

/** The soft limit on open files from /proc/self/limits (Node raises it to the hard limit at start); 1024 if unreadable. */
export function openFilesLimit (limitsFile = '/proc/self/limits'): number {
  try {
    const line = readFileSync(limitsFile, 'utf8').split('\n').find(l => l.startsWith('Max open files'))
    const soft = line === undefined ? NaN : Number(line.slice('Max open files'.length).trim().split(/\s+/)[0])
    return Number.isInteger(soft) && soft > 0 ? soft : 1024
  } catch {
    return 1024
  }
}

export class WorkloadAdmission {
  readonly limits: WorkloadApiLimits
  readonly #logger: Logger
  readonly #openFiles: number
  readonly #perUid = new Map<number, number>()
  readonly #identified = new Set<number>()
  readonly #refused = new Map<WorkloadRefusal, number>()
  readonly #lastLog = new Map<WorkloadRefusal, { at: number, total: number }>()
  #open = 0

  readonly #socketName: string

  /**
   * `socketName` names the socket in refusal log lines: the Workload API's, or the SPIRE server API's (which applies
   * the same limits, counted on its own).
   */
  constructor (limits: WorkloadApiLimits, logger: Logger, openFiles = openFilesLimit(), socketName = 'workload API') {
    this.limits = limits
    this.#logger = logger
    this.#openFiles = openFiles
    this.#socketName = socketName
  }

  /** Admits a connection from `uid` (counted until `release`), or says why not. */
  admit (uid: number): WorkloadRefusal | undefined {
    const held = this.#perUid.get(uid) ?? 0
    const reason = held >= this.limits.maxConnectionsPerUid
      ? 'max_connections_per_uid'
      : this.#open >= this.#openFiles - OWN_FILES
        ? 'open_files_limit'
        : this.#open >= this.#openFiles - OWN_FILES - this.limits.reservedDescriptors && !this.#identified.has(uid)
          ? 'reserved_descriptors'
          : undefined
    if (reason !== undefined) return reason
    this.#perUid.set(uid, held + 1)
    this.#open++
    return undefined
  }

  release (uid: number): void {
    const held = (this.#perUid.get(uid) ?? 1) - 1
    if (held > 0) this.#perUid.set(uid, held)
    else this.#perUid.delete(uid)
    this.#open--
  }

  /** The agent issued `uid` an identity: it may use the reserved descriptors. */
  identified (uid: number): void {
    if (this.#identified.size >= MAX_IDENTIFIED_UIDS) this.#identified.clear()
    this.#identified.add(uid)
  }

  /** Counts a refusal, and logs it unless this reason was logged within the interval. */
  refused (reason: WorkloadRefusal, fields: { uid?: number, pid?: number, err?: unknown }): void {
    const total = (this.#refused.get(reason) ?? 0) + 1
    this.#refused.set(reason, total)
    const last = this.#lastLog.get(reason)
    const now = Date.now()
    if (last !== undefined && now - last.at < LOG_INTERVAL_MS) return
    this.#lastLog.set(reason, { at: now, total })
    const since = last === undefined ? 0 : total - last.total - 1
    this.#logger.warn({ event: 'workload_connection_refused', reason, ...fields, refused_total: total, ...(since > 0 ? { suppressed: since } : {}) }, `${this.#socketName}: refused a connection: ${WHY[reason]}`)
  }

  /** Refusals since start, by reason; the connections open now; the open-file limit the reserve is taken from. */
  status (): { open: number, refused: Partial<Record<WorkloadRefusal, number>>, openFiles: number } {
    return { open: this.#open, refused: Object.fromEntries(this.#refused), openFiles: this.#openFiles }
  }
}
