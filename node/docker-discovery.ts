/**
 * Docker discovery: the apps Docker runs on the app network, kept current. It follows the Engine's events
 * (containers started, dead, restarted or renamed; the network's containers connected or disconnected, the network
 * created or removed) and, a moment after any (debounced, so a burst is one look), lists the apps again
 * (docker-listing.ts); what it finds goes to the node proxy when it differs from the last.
 *
 * The event stream is opened before each listing, so nothing that happens in between is missed. If dockerd goes
 * away, the apps found last are served on (their namespaces and processes are the node proxy's own to watch), it is
 * logged, and the stream is opened again with backoff (0.5 s doubling to 10 s), followed by a full listing.
 * A problem the operator must fix (a bad label, a missing network) is logged once, and again only if it comes back.
 */
import type { Logger } from 'pino'
import { Backoff } from '../spiffe/backoff'
import type { BackoffOptions } from '../spiffe/backoff'
import { DockerEngine } from './docker-engine'
import type { DockerEvent } from './docker-engine'
import type { DockerError } from './docker-errors'
import { listDockerApps } from './docker-listing'
import type { DockerListing, DockerSettings } from './docker-listing'

const EVENT_FILTERS = {
  type: ['container', 'network'],
  event: ['start', 'die', 'restart', 'rename', 'connect', 'disconnect', 'create', 'destroy']
} as const
const DEBOUNCE_MS = 100

export interface DockerDiscoveryOptions {
  readonly docker: DockerSettings
  /** The node's httpPorts: an app's unless its label says otherwise. */
  readonly httpPorts: ReadonlySet<number>
  readonly logger: Logger
  /** Receives what Docker runs: after the first listing, then at every change; awaited before the next. */
  readonly found: (listing: DockerListing) => Promise<void>
  /** Tests: the engine to ask, the debounce and the backoff. */
  readonly engine?: DockerEngine
  readonly debounceMs?: number
  readonly backoff?: BackoffOptions
}

/** The listing as comparable text: the network and the apps (sets as lists). */
function keyOf (listing: DockerListing): string {
  return JSON.stringify({ network: listing.network, apps: listing.apps }, (_key, value: unknown) => value instanceof Set ? [...value as Set<unknown>] : value)
}

export class DockerDiscovery {
  /**
   * Settles after the first listing was tried, whether Docker answered or not; rejects only if the node proxy could
   * not apply the first one (`found` threw: the guard could not be installed on Docker's bridge, say).
   */
  readonly firstListing: Promise<void>
  readonly #options: DockerDiscoveryOptions
  readonly #engine: DockerEngine
  readonly #backoff: Backoff
  readonly #logger: Logger
  #settleFirst: (error?: Error) => void = () => undefined
  #closeEvents: (() => void) | undefined
  #following = false
  #timer: NodeJS.Timeout | undefined
  #retry: NodeJS.Timeout | undefined
  #listing = false
  #again = false
  #lastKey: string | undefined
  #lastNetworkId: string | undefined
  /** The messages of the problems logged, so each is logged once while it lasts. */
  #reported = new Set<string>()
  #closed = false

  constructor (options: DockerDiscoveryOptions) {
    this.#options = options
    this.#engine = options.engine ?? new DockerEngine(options.docker.socket)
    this.#backoff = new Backoff({ initialMs: 500, maxMs: 10_000, ...options.backoff })
    this.#logger = options.logger.child({ component: 'docker' })
    this.firstListing = new Promise((resolve, reject) => {
      this.#settleFirst = error => {
        this.#settleFirst = () => undefined
        if (error === undefined) resolve()
        else reject(error)
      }
    })
    this.#follow()
  }

  /** Stops following; what was found stays the node proxy's to serve or let go. Idempotent. */
  close (): void {
    this.#closed = true
    clearTimeout(this.#timer)
    clearTimeout(this.#retry)
    this.#closeEvents?.()
    this.#settleFirst()
  }

  #follow (): void {
    if (this.#closed) return
    this.#closeEvents = this.#engine.events(EVENT_FILTERS, {
      opened: () => {
        this.#following = true
        this.#logger.info({ event: 'docker_following', socket: this.#engine.socketPath, network: this.#options.docker.network }, 'following the Docker Engine\'s events')
        this.#schedule(0)
      },
      event: event => { if (this.#relevant(event)) this.#schedule(this.#options.debounceMs ?? DEBOUNCE_MS) },
      ended: error => { this.#lost(error) }
    })
  }

  /** Every container event the filters let through; network events of the app network only. */
  #relevant (event: DockerEvent): boolean {
    if (event.Type !== 'network') return true
    return event.Actor?.ID === this.#lastNetworkId || event.Actor?.Attributes?.name === this.#options.docker.network
  }

  #lost (error: DockerError): void {
    this.#following = false
    this.#closeEvents = undefined
    const retryMs = Math.round(this.#backoff.next())
    this.#logger.warn({ event: 'docker_unreachable', code: error.code, err: error.message, retryMs }, 'lost the Docker Engine: serving the apps found last, trying again')
    this.#settleFirst()
    this.#retry = setTimeout(() => { this.#follow() }, retryMs)
  }

  /** A listing in `ms`, unless one is due sooner already. */
  #schedule (ms: number): void {
    if (this.#closed || this.#timer !== undefined) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      void this.#list()
    }, ms)
  }

  /** One listing at a time; one asked for meanwhile runs after it. */
  async #list (): Promise<void> {
    if (this.#listing) {
      this.#again = true
      return
    }
    this.#listing = true
    try {
      do {
        this.#again = false
        await this.#listOnce()
      } while (this.#again && !this.#closed)
    } finally {
      this.#listing = false
    }
  }

  async #listOnce (): Promise<void> {
    let listing: DockerListing
    try {
      listing = await listDockerApps(this.#engine, this.#options.docker, this.#options.httpPorts)
    } catch (err) {
      const error = err as DockerError
      this.#logger.warn({ event: 'docker_listing_failed', code: error.code, err: error.message }, 'cannot list the apps Docker runs: serving the apps found last')
      // With the stream down, its reconnection lists again; with it up, try again after a pause.
      if (this.#following) this.#schedule(this.#backoff.next())
      this.#settleFirst()
      return
    }
    if (this.#closed) return
    this.#backoff.reset()
    this.#report(listing)
    this.#lastNetworkId = listing.network?.id
    const key = keyOf(listing)
    if (key === this.#lastKey) return this.#settleFirst()
    this.#logger.info({
      event: 'docker_apps',
      network: listing.network?.name,
      bridge: listing.network?.bridge,
      subnets: listing.network?.subnets.map(subnet => subnet.text),
      apps: listing.apps.map(app => ({ name: app.name, pid: app.pid }))
    }, 'apps found through Docker')
    try {
      await this.#options.found(listing)
      this.#lastKey = key
      this.#settleFirst()
    } catch (err) {
      const error = err as Error & { code?: string }
      this.#logger.error({ event: 'docker_apps_not_applied', code: error.code, err: error.message }, 'cannot apply what Docker runs: tried again at the next change')
      this.#settleFirst(error)
    }
  }

  #report (listing: DockerListing): void {
    const now = new Set(listing.problems.map(problem => problem.message))
    for (const problem of listing.problems) {
      if (!this.#reported.has(problem.message)) this.#logger.error({ event: 'docker_problem', code: problem.code, err: problem.message }, 'a problem with what Docker runs')
    }
    this.#reported = now
  }
}
