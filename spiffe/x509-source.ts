/**
 * X509Source: this workload's current X509-SVID and the bundles to verify peers with, kept up to date from the
 * Workload API's FetchX509SVID stream (SPIFFE_Workload_API.md §5.2). It reconnects with backoff and serves the last
 * good state while the agent is away, so a restarting agent never takes the workload's identity with it.
 */
import { EventEmitter } from 'node:events'
import { Backoff } from './backoff'
import type { BackoffOptions } from './backoff'
import { BundleSet } from './bundle-set'
import { ReconnectingStream } from './reconnecting-stream'
import { socketPathProblem } from './socket-check'
import { SpiffeBundle } from './spiffe-bundle'
import { SourceError } from './source-errors'
import { ENDPOINT_SOCKET_ENV, workloadEndpoint, WorkloadApiError, WorkloadClient } from './workload-client'
import type { X509Svid, X509SvidResponseParsed } from './workload-client'
import { makeX509Context } from './x509-context'
import type { X509Context } from './x509-context'
import { X509ContextState } from './x509-context-state'

export type { X509Context } from './x509-context'

export interface X509SourceOptions {
  /** The Workload API address as workloadEndpoint takes it; $SPIFFE_ENDPOINT_SOCKET by default. */
  address?: string
  /** Chooses this workload's identity among those issued; by default the first, the default identity (API §5.2). */
  pick?: (svids: X509Svid[]) => X509Svid | undefined
  /** Delays between reconnection attempts. */
  backoff?: BackoffOptions
  /** Hears every failure: stream errors (the source reconnects) and invalid updates (the last good state stays). */
  onError?: (err: Error) => void
}

export class X509Source extends EventEmitter<{ update: [X509Context] }> {
  /** The address as given (or from the environment), for messages. */
  readonly address: string
  readonly #pick: (svids: X509Svid[]) => X509Svid | undefined
  readonly #onError: (err: Error) => void
  readonly #state = new X509ContextState('X509Source')
  readonly #stream: ReconnectingStream
  #lastError?: Error

  /** Opens the stream at once; an invalid address throws ERR_WORKLOAD_API_ADDRESS here. */
  constructor (options: X509SourceOptions = {}) {
    super()
    const target = workloadEndpoint(options.address)
    this.address = options.address ?? target
    this.#pick = options.pick ?? (svids => svids[0])
    this.#onError = options.onError ?? (() => {})
    this.#stream = new ReconnectingStream(() => this.#open(), new Backoff(options.backoff))
  }

  /** The last good state, or undefined before the first SVID arrived. */
  get current (): X509Context | undefined {
    return this.#state.current
  }

  /**
   * The current state, waiting for the first one if need be. After `timeoutMs` it rejects with
   * ERR_X509_SOURCE_TIMEOUT, saying what to check given the last error seen.
   */
  async ready (timeoutMs = 30_000): Promise<X509Context> {
    return await this.#state.ready(timeoutMs, () => this.#timeoutError(timeoutMs))
  }

  /**
   * Starts the backoff again from its first delay and, if a reconnection is waiting, moves it to that delay: for a
   * caller whose SVID has expired, so the agent's return is noticed at once rather than after the longest delay.
   * With a stream open or being opened it only resets the backoff: never a second stream.
   */
  retrySoon (): void {
    this.#stream.retrySoon()
  }

  /** Stops the stream and any reconnection; pending ready() calls reject with ERR_SOURCE_CLOSED. Idempotent. */
  close (): void {
    this.#stream.stop()
    this.#state.close()
  }

  /**
   * A fresh client per attempt: grpc-js would otherwise keep the dead connection's own backoff (up to 120 s) and
   * fail our calls fast until it ends, so the agent's return would go unnoticed far longer than our backoff says.
   */
  #open (): () => void {
    const client = new WorkloadClient(this.address)
    const cancel = client.watchX509Svids(update => this.#receive(update), err => this.#fail(err))
    return () => {
      cancel()
      client.close()
    }
  }

  #fail (err: Error): void {
    if (this.#state.closed) return
    this.#report(err)
    // WorkloadClient reports a message it cannot parse with this code and keeps the stream; anything else ended it.
    if (err instanceof WorkloadApiError && err.code === 'ERR_WORKLOAD_API_RESPONSE_INVALID') return
    this.#stream.failed()
  }

  #report (err: Error): void {
    this.#lastError = err
    this.#onError(err)
  }

  #receive (update: X509SvidResponseParsed): void {
    if (this.#state.closed) return
    this.#stream.answered()
    const svid = this.#pick(update.svids)
    if (svid === undefined) {
      const ids = update.svids.map(s => s.spiffeId).join(', ')
      this.#report(new SourceError('ERR_X509_SOURCE_NO_SVID', `the Workload API at ${this.address} issued ${ids}, but pick chose none of them`))
      return
    }
    const context = makeX509Context(svid, update.svids, bundlesOf(svid, update))
    // API §5.2: every message is the full state, re-sent on reconnection.
    if (this.#state.publish(context)) this.emit('update', context)
  }

  #timeoutError (timeoutMs: number): SourceError {
    const err = this.#lastError
    // An unreachable agent is what whatToCheck describes from the socket itself: its message would say it twice.
    const last = err === undefined || (err as { code?: unknown }).code === 'ERR_WORKLOAD_API_UNAVAILABLE' ? '' : ` (last error: ${err.message})`
    return new SourceError('ERR_X509_SOURCE_TIMEOUT',
      `no X509-SVID from the Workload API at ${this.address} within ${timeoutMs} ms: ${whatToCheck(this.address, err)}${last}`, { cause: err })
  }
}

/**
 * The federated bundles, then the bundles that came with the SVIDs: those are their trust domains' own, so they
 * replace a federated entry of the same name, and the chosen SVID's comes first should two SVIDs of one trust
 * domain disagree.
 */
function bundlesOf (svid: X509Svid, update: X509SvidResponseParsed): BundleSet {
  const bundles = new BundleSet()
  for (const bundle of update.federatedBundles.values()) bundles.set(new SpiffeBundle(bundle.trustDomain, { x509: bundle }))
  const own = new Set<string>()
  for (const s of [svid, ...update.svids]) {
    const trustDomain = s.bundle.trustDomain
    if (own.has(trustDomain.name)) continue
    own.add(trustDomain.name)
    bundles.set(new SpiffeBundle(trustDomain, { x509: s.bundle }))
  }
  return bundles
}

/** The likely cause of a timeout, from the last error, said as what to check. */
function whatToCheck (address: string, err: Error | undefined): string {
  const code = (err as { code?: unknown } | undefined)?.code
  if (code === 'ERR_WORKLOAD_API_DENIED') {
    const uid = process.geteuid?.() ?? '?'
    const gid = process.getegid?.() ?? '?'
    return 'no identity was issued to this process: a registration entry must match its selectors ' +
      `(e.g. unix:uid:${uid}, unix:gid:${gid}, unix:path:${process.execPath})`
  }
  if (code === 'ERR_X509_SOURCE_NO_SVID') return 'the agent issued SVIDs, but the pick function accepted none of them'
  if (code === 'ERR_WORKLOAD_API_RESPONSE_INVALID') return 'the agent sends X509-SVIDs this client cannot use'
  if (err !== undefined && code !== 'ERR_WORKLOAD_API_UNAVAILABLE') return 'the agent failed the request'
  return socketPathProblem(workloadEndpoint(address), address, ENDPOINT_SOCKET_ENV)
}
