/**
 * What the fleet's port refuses, counted by reason since start and logged at most once per address and reason per
 * 10 s (a device retrying in a loop must not flood the log), with the counts for `FleetServer.status()`.
 */
import type { Logger } from 'pino'
import { RateLimitedLog } from '../../log/limited-log'

export class FleetRefusals {
  readonly #log: RateLimitedLog
  readonly #message: string
  readonly #counts = new Map<string, number>()

  constructor (logger: Logger, message: string) {
    this.#log = new RateLimitedLog(logger)
    this.#message = message
  }

  refused (address: string, reason: string, fields: Record<string, unknown>): void {
    this.#counts.set(reason, (this.#counts.get(reason) ?? 0) + 1)
    this.#log.warn(`${address} ${reason}`, { address, reason, ...fields }, this.#message)
  }

  counts (): Record<string, number> {
    return Object.fromEntries(this.#counts)
  }
}
