/**
 * DelegatedX509Source: ONE delegated workload's current X509-SVID and the bundles to verify its peers with, for a
 * node proxy serving many apps through an agent's Delegated Identity API. It offers X509Source's surface
 * (X509ContextSource), so the proxy's identity code takes either. The workload's SubscribeToX509SVIDs stream is its
 * own; the bundles come from the client's one shared SubscribeToX509Bundles stream. Like X509Source it reconnects
 * with backoff and keeps the last good state while the agent is away, and emits `update` only on a real change.
 *
 * Unlike X509Source, an update with NO SVIDs withdraws the identity: `current` becomes undefined, `withdrawn` is
 * emitted (and onError hears ERR_X509_SOURCE_WITHDRAWN), and ready() waits again. An agent that cannot be reached
 * says nothing about the workload, but an agent that answers "no SVID for this workload" does: its entry was deleted
 * (or no longer matches). A sidecar keeps its last SVID then, because its own workload loses nothing else by it; a
 * node proxy serving tens of apps must not go on presenting, for up to an SVID's lifetime, an identity the
 * operator revoked for one of them. The proxy refuses that app's connections until an SVID is issued again.
 */
import { EventEmitter } from 'node:events'
import { Backoff } from './backoff'
import type { BackoffOptions } from './backoff'
import type { DelegatedIdentityClient } from './delegated-identity-client'
import { ADMIN_ENDPOINT_SOCKET_ENV, delegatedIdentityEndpoint } from './delegated-identity-endpoint'
import { clientClosed, isInvalidResponse } from './delegated-identity-errors'
import type { DelegatedX509SvidUpdate } from './delegated-identity-messages'
import { describeWorkload, workloadRequestFields } from './delegated-workload'
import type { DelegatedWorkload } from './delegated-workload'
import { assembleDelegatedX509Context } from './delegated-x509-context'
import { ReconnectingStream } from './reconnecting-stream'
import type { X509BundleMap } from './shared-x509-bundles'
import { socketPathProblem } from './socket-check'
import { SourceError } from './source-errors'
import type { X509Svid } from './workload-messages'
import type { X509Context, X509ContextSource } from './x509-context'
import { X509ContextState } from './x509-context-state'

export interface DelegatedX509SourceOptions {
  /** The node's client: all its sources share its one bundle stream. The source does not close it. */
  client: DelegatedIdentityClient
  /** The workload, by PID (the agent attests it) or by selectors. */
  workload: DelegatedWorkload
  /** Chooses the workload's identity among those issued; by default the first. */
  pick?: (svids: X509Svid[]) => X509Svid | undefined
  /** Delays between reconnections of the workload's SVID stream. */
  backoff?: BackoffOptions
  /**
   * Hears every failure: stream errors (the source reconnects), invalid updates (the last good state stays), the
   * shared bundle stream's failures, and a withdrawal (ERR_X509_SOURCE_WITHDRAWN).
   */
  onError?: (err: Error) => void
}

export class DelegatedX509Source extends EventEmitter<{ update: [X509Context], withdrawn: [SourceError] }> implements X509ContextSource {
  /** The agent's admin socket address as the client has it, for messages. */
  readonly address: string
  readonly workload: DelegatedWorkload
  readonly #client: DelegatedIdentityClient
  readonly #pick: (svids: X509Svid[]) => X509Svid | undefined
  readonly #onError: (err: Error) => void
  readonly #state = new X509ContextState('DelegatedX509Source')
  readonly #unsubscribeBundles: () => void
  readonly #stream: ReconnectingStream
  #update?: DelegatedX509SvidUpdate
  #bundles?: X509BundleMap
  #lastError?: Error

  /** Opens the workload's stream at once; an invalid workload or a closed client throws here. */
  constructor (options: DelegatedX509SourceOptions) {
    super()
    const fields = workloadRequestFields(options.workload)
    this.workload = Object.freeze(fields.pid !== 0 ? { pid: fields.pid } : { selectors: Object.freeze(fields.selectors.map(s => Object.freeze(s))) })
    this.#client = options.client
    this.address = options.client.address
    this.#pick = options.pick ?? (svids => svids[0])
    this.#onError = options.onError ?? (() => {})
    const backoff = new Backoff(options.backoff)
    if (options.client.closed) throw clientClosed(options.client.address)
    this.#unsubscribeBundles = options.client.x509Bundles.subscribe({ onUpdate: bundles => this.#bundlesChanged(bundles), onError: err => this.#fail(err, false) })
    this.#bundles = options.client.x509Bundles.current
    this.#stream = new ReconnectingStream(() => this.#open(), backoff)
  }

  /** The workload's state to present now: undefined before its first SVID, and after the agent withdrew it. */
  get current (): X509Context | undefined {
    return this.#state.current
  }

  /**
   * The current state, waiting for one if need be. After `timeoutMs` it rejects with ERR_X509_SOURCE_TIMEOUT,
   * saying what to check given what the agent answered last.
   */
  async ready (timeoutMs = 30_000): Promise<X509Context> {
    return await this.#state.ready(timeoutMs, () => this.#timeoutError(timeoutMs))
  }

  /** As X509Source.retrySoon, for this workload's stream and the shared bundle stream. */
  retrySoon (): void {
    if (this.#state.closed) return
    this.#stream.retrySoon()
    this.#client.x509Bundles.retrySoon()
  }

  /** Stops the workload's stream and leaves the shared one; pending ready() calls reject with ERR_SOURCE_CLOSED. Idempotent. */
  close (): void {
    if (this.#state.closed) return
    this.#stream.stop()
    this.#unsubscribeBundles()
    this.#state.close()
  }

  #open (): () => void {
    try {
      return this.#client.subscribeToX509Svids(this.workload, update => this.#svidsChanged(update), err => this.#fail(err, true))
    } catch (err) {
      // The workload was checked at construction: only a client closed since then throws here. Nothing to retry.
      queueMicrotask(() => {
        this.#report(err as Error)
        this.close()
      })
      return () => {}
    }
  }

  #fail (err: Error, ownStream: boolean): void {
    if (this.#state.closed) return
    this.#report(err)
    // The shared bundle stream reconnects by itself; a message that did not parse leaves the stream open.
    if (ownStream && !isInvalidResponse(err)) this.#stream.failed()
  }

  #report (err: Error): void {
    this.#lastError = err
    this.#onError(err)
  }

  #svidsChanged (update: DelegatedX509SvidUpdate): void {
    if (this.#state.closed) return
    this.#stream.answered()
    this.#update = update
    this.#rebuild()
  }

  #bundlesChanged (bundles: X509BundleMap): void {
    if (this.#state.closed) return
    this.#bundles = bundles
    this.#rebuild()
  }

  #rebuild (): void {
    const update = this.#update
    if (update === undefined) return
    if (update.svids.length === 0) {
      this.#withdraw()
      return
    }
    // Without bundles yet, the shared stream's first message is on its way: it rebuilds then.
    if (this.#bundles === undefined) return
    const context = assembleDelegatedX509Context(update, this.#bundles, this.#pick, `the agent at ${this.address} for ${describeWorkload(this.workload)}`)
    if (context instanceof SourceError) {
      this.#report(context)
      return
    }
    // Every message is the full state, sent again on every change of the agent's cache and on reconnection.
    if (this.#state.publish(context)) this.emit('update', context)
  }

  /** The agent has no SVID for the workload: what it held is withdrawn (see the file's comment for why). */
  #withdraw (): void {
    const previous = this.#state.withdraw()
    if (previous === undefined) return
    const err = new SourceError('ERR_X509_SOURCE_WITHDRAWN', `the agent at ${this.address} no longer issues an X509-SVID to ${describeWorkload(this.workload)} ` +
      `(it had ${previous.spiffeId.toString()}): its registration entry was deleted or no longer matches, so that identity is withdrawn and no longer presented`)
    this.#report(err)
    this.emit('withdrawn', err)
  }

  #timeoutError (timeoutMs: number): SourceError {
    return new SourceError('ERR_X509_SOURCE_TIMEOUT', `no X509-SVID for ${describeWorkload(this.workload)} from the Delegated Identity API at ${this.address} ` +
      `within ${timeoutMs} ms: ${this.#whatToCheck()}`, { cause: this.#lastError })
  }

  /** The likely cause of a timeout, from what the agent answered last, said as what to check. */
  #whatToCheck (): string {
    if (this.#update?.svids.length === 0) {
      const how = 'pid' in this.workload ? ' (by the selectors the agent attests that process to, e.g. unix:uid)' : ''
      return `the agent issues no X509-SVID to that workload: no registration entry matches it${how}; a new entry reaches the agent within seconds`
    }
    const err = this.#lastError
    const code = (err as { code?: unknown } | undefined)?.code
    if (err !== undefined && code !== 'ERR_DELEGATED_IDENTITY_API_UNAVAILABLE') return err.message
    if (this.#update !== undefined) return 'the agent sent the SVID, but no bundles yet (SubscribeToX509Bundles)'
    return socketPathProblem(delegatedIdentityEndpoint(this.address), this.address, ADMIN_ENDPOINT_SOCKET_ENV)
  }
}
