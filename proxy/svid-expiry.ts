/**
 * The sidecar's own SVID running out while no newer one comes: a warning (`svid_expiring`) shortly before its
 * NotAfter, an error (`svid_expired`) once it has passed, and a callback so the sidecar can ask the Workload API
 * again at once. One timer follows the SVID in use: re-armed for each new SVID, unref'd (it never keeps the process
 * alive), cleared on stop.
 */
import { X509Certificate } from 'node:crypto'
import type { Logger } from 'pino'
import type { X509Context } from '../spiffe/x509-source'

/** setTimeout's longest delay (2^31 − 1 ms, about 24.8 days): a longer one would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1

/** The earliest warning ahead of expiry. */
const WARNING_CAP_MS = 60_000

/** Whether an SVID with this NotAfter has expired: RFC 5280 §4.1.2.5 counts NotAfter itself as valid. */
export function svidHasExpired (notAfter: Date, now = Date.now()): boolean {
  return now > notAfter.getTime()
}

/**
 * How long before its NotAfter an SVID counts as expiring: a tenth of its lifetime, at most one minute. Agents renew
 * at half the lifetime (±10 %, like SPIRE), so with a tenth left the renewal is overdue by at least 40 % of the
 * lifetime: the agent is away, not late, and short-lived SVIDs do not warn on every rotation. The one-minute cap
 * keeps the warning for long-lived SVIDs (an hour by default) close to the outage it announces, so it reads as
 * "about to fail" rather than as noise, while an alert on it still fires before handshakes start failing. The lifetime
 * counts from NotBefore, as SPIRE's rotation does; issuers backdate it 10 s, which matters only for SVIDs of a few
 * seconds (tests), where the warning may come just before a renewal that is due.
 */
export function expiryWarningMs (notBefore: Date, notAfter: Date): number {
  return Math.min(WARNING_CAP_MS, Math.max(0, notAfter.getTime() - notBefore.getTime()) / 10)
}

type Stage = 'fresh' | 'expiring' | 'expired'

interface Watched {
  readonly leaf: Buffer
  readonly context: X509Context
  readonly warnAt: number
  stage: Stage
}

export class SvidExpiryWatch {
  readonly #logger: Logger
  readonly #workloadApi: string
  readonly #onExpired: (context: X509Context) => void
  #watched: Watched | undefined
  #timer: NodeJS.Timeout | undefined

  /** `workloadApi` is the address the SVIDs come from, for the log lines; `onExpired` runs once per expired SVID. */
  constructor (logger: Logger, workloadApi: string, onExpired: (context: X509Context) => void) {
    this.#logger = logger
    this.#workloadApi = workloadApi
    this.#onExpired = onExpired
  }

  /** Follows `context`'s SVID from now on; the same leaf again (only a bundle changed) leaves the timer as it is. */
  watch (context: X509Context): void {
    const leaf = context.svid.chain[0]
    if (this.#watched?.leaf.equals(leaf) === true) return
    this.stop()
    const notBefore = new Date(new X509Certificate(leaf).validFrom)
    this.#watched = { leaf, context, warnAt: context.notAfter.getTime() - expiryWarningMs(notBefore, context.notAfter), stage: 'fresh' }
    this.#check()
  }

  /** Clears the timer; nothing is logged until the next watch(). */
  stop (): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#watched = undefined
  }

  /** Logs what is due now, then waits for the next moment that matters (timers may wake early or be capped). */
  #check (): void {
    const watched = this.#watched
    if (watched === undefined) return
    const now = Date.now()
    const { context } = watched
    const expired = svidHasExpired(context.notAfter, now)
    const fields = { spiffeId: context.spiffeId.toString(), notAfter: context.notAfter.toISOString(), workloadApi: this.#workloadApi }
    if (watched.stage === 'fresh' && now >= watched.warnAt && !expired) {
      watched.stage = 'expiring'
      this.#logger.warn({ event: 'svid_expiring', ...fields }, 'the SVID expires soon and the Workload API has sent no newer one')
    }
    if (expired) {
      watched.stage = 'expired'
      this.#logger.error({ event: 'svid_expired', ...fields }, 'the SVID has expired: peers will refuse it until the Workload API sends a new one')
      this.#onExpired(context)
      return
    }
    const next = watched.stage === 'fresh' ? watched.warnAt : context.notAfter.getTime() + 1
    this.#timer = setTimeout(() => { this.#check() }, Math.min(MAX_TIMER_MS, Math.max(0, next - now)))
    this.#timer.unref()
  }
}
