/**
 * Keeps the device's copy of the trust domain's bundle current: GetBundle every 5 s, as SPIRE's `spire`
 * UpstreamAuthority polls its upstream, handed to the CA, which persists and serves it when it changed (other devices'
 * JWT keys, a new root). A poll starts only after the previous one ended. Losing and regaining the upstream are each
 * logged once (the CA goes on issuing with what it holds), not every 5 s; a bundle the CA could not keep (its state
 * not writable) is logged at most once a minute.
 */
import type { Logger } from 'pino'
import { RateLimitedLog } from '../../log/limited-log'
import type { SpiffeBundle } from '../../spiffe/spiffe-bundle'

export const BUNDLE_POLL_INTERVAL_MS = 5000
const KEEP_FAILURE_LOG_MS = 60_000

export interface BundlePollOptions {
  readonly upstream: { readonly name: string, fetchBundle: () => Promise<SpiffeBundle> }
  readonly ca: { updateUpstreamBundle: (bundle: SpiffeBundle) => Promise<boolean> }
  readonly logger: Logger
  readonly intervalMs?: number
}

export class BundlePoll {
  readonly #options: BundlePollOptions
  readonly #keepFailures: RateLimitedLog
  #timer?: NodeJS.Timeout
  #stopped = false
  /** When the upstream last answered; when it stopped answering (undefined while it answers). */
  #lastContact?: Date
  #lostSince?: Date

  constructor (options: BundlePollOptions) {
    this.#options = options
    this.#keepFailures = new RateLimitedLog(options.logger, KEEP_FAILURE_LOG_MS)
  }

  start (): this {
    this.#schedule(0)
    return this
  }

  stop (): void {
    this.#stopped = true
    clearTimeout(this.#timer)
  }

  get lastContact (): Date | undefined {
    return this.#lastContact
  }

  /** Since when the upstream has not answered; undefined while it answers (or before the first poll). */
  get lostSince (): Date | undefined {
    return this.#lostSince
  }

  #schedule (delayMs: number): void {
    if (this.#stopped) return
    this.#timer = setTimeout(() => { void this.#poll() }, delayMs).unref()
  }

  async #poll (): Promise<void> {
    const intervalMs = this.#options.intervalMs ?? BUNDLE_POLL_INTERVAL_MS
    const bundle = await this.#options.upstream.fetchBundle().then(fetched => { this.#reached(); return fetched }, (err: unknown) => { this.#lost(err, intervalMs) })
    if (bundle !== undefined) await this.#keep(bundle)
    this.#schedule(intervalMs)
  }

  #reached (): void {
    const { upstream, logger } = this.#options
    this.#lastContact = new Date()
    if (this.#lostSince === undefined) return
    logger.info({ upstream: upstream.name, lostSeconds: Math.round((Date.now() - this.#lostSince.getTime()) / 1000) }, 'upstream: reachable again; bundle in sync')
    this.#lostSince = undefined
  }

  #lost (err: unknown, retryMs: number): void {
    if (this.#lostSince !== undefined || this.#stopped) return
    this.#lostSince = new Date()
    this.#options.logger.warn({ upstream: this.#options.upstream.name, err, lastContact: this.#lastContact?.toISOString(), retryMs },
      'upstream: cannot read the bundle; serving the one held, retrying')
  }

  async #keep (bundle: SpiffeBundle): Promise<void> {
    await this.#options.ca.updateUpstreamBundle(bundle).catch((err: unknown) => {
      this.#keepFailures.error('keep', { upstream: this.#options.upstream.name, err }, 'upstream: the CA could not keep the bundle read; retrying at the next poll')
    })
  }
}
