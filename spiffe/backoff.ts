/**
 * Exponential backoff with jitter for the Workload API sources: how long to wait before trying the agent again.
 * Jitter spreads out the workloads of a host that all lost the agent at once, so its restart is not met by a stampede.
 */

export interface BackoffOptions {
  /** The first delay, in ms; 500 by default. */
  initialMs?: number
  /** The longest delay, in ms; 30 000 by default. */
  maxMs?: number
}

export class Backoff {
  readonly #initialMs: number
  readonly #maxMs: number
  #attempt = 0

  constructor (options: BackoffOptions = {}) {
    const { initialMs = 500, maxMs = 30_000 } = options
    if (!Number.isFinite(initialMs) || initialMs <= 0) throw new TypeError('backoff.initialMs must be a positive number of ms')
    if (!Number.isFinite(maxMs) || maxMs < initialMs) throw new TypeError('backoff.maxMs must be a number of ms, at least backoff.initialMs')
    this.#initialMs = initialMs
    this.#maxMs = maxMs
  }

  /** The next delay: doubling from initialMs up to maxMs, each drawn at random from its upper half. */
  next (): number {
    const ceiling = Math.min(this.#maxMs, this.#initialMs * 2 ** this.#attempt++)
    return ceiling / 2 + Math.random() * ceiling / 2
  }

  /** Starts again from initialMs (after the agent answered). */
  reset (): void {
    this.#attempt = 0
  }
}
