/**
 * Keeps one federated trust domain's bundle current (SPIFFE Federation §4, as SPIRE's bundle client does): fetches
 * its endpoint, authenticated for https_spiffe by the latest bundle held (§5.2.2.4), and stores a fetched bundle
 * only when it is fresher by `spiffe_sequence` (§4.2); the next fetch at the bundle's refresh hint ÷ 4 (5 minutes
 * without a hint, never more often than the floor), a failed one retried with backoff, the last good bundle kept
 * (it is in the store, so it survives a restart). Each fetch starts only after the previous one ended.
 */
import type { Logger } from 'pino'
import type { TrustDomain } from '../../spiffe/id'
import type { SpiffeBundle } from '../../spiffe/spiffe-bundle'
import type { X509BundleSource } from '../../spiffe/bundle-source'
import type { FederatedBundle, FederatedBundleInput, FederationRelationship } from '../store'
import { fetchBundle } from './bundle-fetch'
import type { BundleFetchOptions } from './bundle-fetch'
import { BundleFetchError } from './fetch-errors'
import { compareFreshness, nextRefreshMs, retryDelayMs } from './refresh-schedule'

export interface RelationshipFetcherDeps {
  readonly store: {
    findFederatedBundle: (name: string) => FederatedBundle | undefined
    setFederatedBundle: (input: FederatedBundleInput) => FederatedBundle
  }
  /** The latest X.509 bundle of a trust domain (ours or a federated one), to authenticate https_spiffe endpoints. */
  readonly bundleFor: (trustDomain: TrustDomain) => X509BundleSource | undefined
  readonly logger: Logger
  readonly minimumRefreshMs: number
  /** Fetch settings for tests (web CAs, timeouts). */
  readonly fetchOptions?: Omit<BundleFetchOptions, 'bundleFor'>
}

/** What `chaperone federation show` and the metrics tell about a relationship's fetching. */
export interface FetchStatus {
  /** When a fetch last ended, successfully or not. */
  readonly lastAttemptAt?: Date
  /** When a fetch last succeeded (whether or not the bundle had changed). */
  readonly lastSuccessAt?: Date
  /** When the stored bundle last changed by a fetch. */
  readonly lastUpdateAt?: Date
  readonly nextRefreshAt?: Date
  readonly consecutiveFailures: number
  readonly failures: Readonly<Record<string, number>>
  readonly lastError?: { readonly reason: string, readonly message: string }
}

export class RelationshipFetcher {
  #relationship: FederationRelationship
  readonly #deps: RelationshipFetcherDeps
  readonly #logger: Logger
  #timer?: NodeJS.Timeout
  #stopped = false
  #running?: Promise<void>
  #status: FetchStatus = { consecutiveFailures: 0, failures: {} }

  constructor (relationship: FederationRelationship, deps: RelationshipFetcherDeps) {
    this.#relationship = relationship
    this.#deps = deps
    this.#logger = deps.logger.child({ trustDomain: relationship.trustDomain.name })
  }

  get relationship (): FederationRelationship {
    return this.#relationship
  }

  get status (): FetchStatus {
    return this.#status
  }

  /** Fetches now, then on schedule. */
  start (): this {
    this.#schedule(0)
    return this
  }

  /** A changed endpoint or profile: fetched again at once with it. */
  update (relationship: FederationRelationship): void {
    this.#relationship = relationship
    this.#schedule(0)
  }

  /** Fetches now (after one in progress), for `federation refresh`; rejects with the fetch's error. */
  async refresh (): Promise<void> {
    await this.#running?.catch(() => {})
    clearTimeout(this.#timer)
    await this.#fetchOnce(true)
  }

  stop (): void {
    this.#stopped = true
    clearTimeout(this.#timer)
  }

  #schedule (delayMs: number): void {
    clearTimeout(this.#timer)
    if (this.#stopped) return
    this.#status = { ...this.#status, nextRefreshAt: new Date(Date.now() + delayMs) }
    this.#timer = setTimeout(() => { void this.#fetchOnce(false).catch(() => {}) }, delayMs).unref()
  }

  async #fetchOnce (rethrow: boolean): Promise<void> {
    const run = this.#fetchAndKeep()
    this.#running = run
    try {
      await run
    } catch (err) {
      if (rethrow) throw err
    } finally {
      if (this.#running === run) this.#running = undefined
    }
  }

  async #fetchAndKeep (): Promise<void> {
    const relationship = this.#relationship
    const name = relationship.trustDomain.name
    const { store, minimumRefreshMs } = this.#deps
    try {
      const fetched = await fetchBundle(relationship, { ...this.#deps.fetchOptions, bundleFor: this.#deps.bundleFor })
      if (this.#stopped || relationship !== this.#relationship) return
      const held = store.findFederatedBundle(name)?.bundle
      const freshness = compareFreshness(fetched, held)
      const now = new Date()
      // The same bundle with another refresh hint (a bootstrap bundle has none, SPIRE's `bundle show` none either)
      // is kept with the endpoint's hint, which the next fetch is scheduled by; SPIRE compares the hint too.
      const hintChanged = freshness === 'same' && fetched.refreshHintSeconds !== held?.refreshHintSeconds
      if (freshness === 'newer' || hintChanged) store.setFederatedBundle({ trustDomain: name, format: 'spiffe', bundle: fetched.marshal() })
      if (freshness === 'newer') {
        this.#logger.info({ sequence: fetched.sequence, previousSequence: held?.sequence, url: relationship.bundleEndpointUrl }, 'federation: bundle updated from the endpoint')
      } else if (freshness === 'older') {
        this.#logger.warn({ sequence: fetched.sequence, heldSequence: held?.sequence, url: relationship.bundleEndpointUrl },
          'federation: the endpoint served an older bundle (lower spiffe_sequence) than the one held; keeping the held one')
      }
      this.#status = { ...this.#status, lastAttemptAt: now, lastSuccessAt: now, consecutiveFailures: 0, ...(freshness === 'newer' ? { lastUpdateAt: now } : {}) }
      this.#schedule(nextRefreshMs(store.findFederatedBundle(name)?.bundle ?? fetched, minimumRefreshMs))
    } catch (err) {
      if (this.#stopped) return
      this.#failed(err)
      throw err
    }
  }

  #failed (err: unknown): void {
    const reason = err instanceof BundleFetchError ? err.reason : 'internal'
    const message = (err as Error).message
    const consecutiveFailures = this.#status.consecutiveFailures + 1
    const held: SpiffeBundle | undefined = this.#deps.store.findFederatedBundle(this.#relationship.trustDomain.name)?.bundle
    const retryMs = retryDelayMs(consecutiveFailures, nextRefreshMs(held, this.#deps.minimumRefreshMs))
    this.#status = {
      ...this.#status,
      lastAttemptAt: new Date(),
      consecutiveFailures,
      failures: { ...this.#status.failures, [reason]: (this.#status.failures[reason] ?? 0) + 1 },
      lastError: { reason, message }
    }
    this.#logger.warn({ reason, err: message, url: this.#relationship.bundleEndpointUrl, consecutiveFailures, retryMs, heldSequence: held?.sequence },
      held === undefined ? 'federation: bundle fetch failed; no bundle held yet, retrying' : 'federation: bundle fetch failed; keeping the last good bundle, retrying')
    this.#schedule(retryMs)
  }
}
