/**
 * Denials are always logged, but at most once per peer per interval: a peer retrying in a loop must not flood the
 * log. The next line for that peer says how many were suppressed meanwhile. Shared by the sidecar (peers by SPIFFE
 * ID) and the agent (callers of its SPIRE server socket by uid; the CA's failed rotations, retried every 10 s).
 */
import type { Logger } from 'pino'

const MAX_PEERS = 10_000

export class RateLimitedLog {
  readonly #logger: Logger
  readonly #intervalMs: number
  readonly #peers = new Map<string, { until: number, suppressed: number }>()

  constructor (logger: Logger, intervalMs = 10_000) {
    this.#logger = logger
    this.#intervalMs = intervalMs
  }

  /** Logs at warn level unless this key logged within the interval. */
  warn (key: string, fields: Record<string, unknown>, message: string): void {
    this.#log('warn', key, fields, message)
  }

  /** Logs at error level unless this key logged within the interval. */
  error (key: string, fields: Record<string, unknown>, message: string): void {
    this.#log('error', key, fields, message)
  }

  #log (level: 'warn' | 'error', key: string, fields: Record<string, unknown>, message: string): void {
    const now = Date.now()
    const state = this.#peers.get(key)
    if (state !== undefined && now < state.until) {
      state.suppressed++
      return
    }
    if (this.#peers.size >= MAX_PEERS) this.#peers.clear()
    this.#peers.set(key, { until: now + this.#intervalMs, suppressed: 0 })
    this.#logger[level](state !== undefined && state.suppressed > 0 ? { ...fields, suppressed: state.suppressed } : fields, message)
  }
}
