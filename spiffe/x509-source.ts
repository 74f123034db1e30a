/**
 * X509Source: this workload's current X509-SVID and the bundles to verify peers with, kept up to date from the
 * Workload API's FetchX509SVID stream (SPIFFE_Workload_API.md §5.2). It reconnects with backoff and serves the last
 * good state while the agent is away, so a restarting agent never takes the workload's identity with it.
 */
import { createHash, X509Certificate } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { statSync } from 'node:fs'
import { Backoff } from './backoff'
import type { BackoffOptions } from './backoff'
import { BundleSet } from './bundle-set'
import { parseSpiffeId } from './id'
import type { SpiffeId } from './id'
import { SpiffeBundle } from './spiffe-bundle'
import { sourceClosed, SourceError } from './source-errors'
import { ENDPOINT_SOCKET_ENV, workloadEndpoint, WorkloadApiError, WorkloadClient } from './workload-client'
import type { X509Svid, X509SvidResponseParsed } from './workload-client'

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

/** One state of the Workload API: frozen, and replaced as a whole on every change. */
export interface X509Context {
  /** The SVID `pick` chose. */
  readonly svid: X509Svid
  /** Every SVID the agent issued to this workload. */
  readonly svids: readonly X509Svid[]
  /** The bundles of the SVIDs' own trust domains plus the federated ones, for verifyPeerChain and TLS contexts. */
  readonly bundles: BundleSet
  readonly spiffeId: SpiffeId
  /** When the chosen SVID's leaf expires. */
  readonly notAfter: Date
  readonly receivedAt: Date
}

interface Waiter {
  resolve: (context: X509Context) => void
  reject: (err: Error) => void
}

export class X509Source extends EventEmitter<{ update: [X509Context] }> {
  /** The address as given (or from the environment), for messages. */
  readonly address: string
  readonly #pick: (svids: X509Svid[]) => X509Svid | undefined
  readonly #backoff: Backoff
  readonly #onError: (err: Error) => void
  readonly #waiters = new Set<Waiter>()
  #client?: WorkloadClient
  #cancel?: () => void
  #retry?: NodeJS.Timeout
  #current?: X509Context
  #fingerprint?: string
  #lastError?: Error
  #closed = false

  /** Opens the stream at once; an invalid address throws ERR_WORKLOAD_API_ADDRESS here. */
  constructor (options: X509SourceOptions = {}) {
    super()
    const target = workloadEndpoint(options.address)
    this.address = options.address ?? target
    this.#pick = options.pick ?? (svids => svids[0])
    this.#backoff = new Backoff(options.backoff)
    this.#onError = options.onError ?? (() => {})
    this.#connect()
  }

  /** The last good state, or undefined before the first SVID arrived. */
  get current (): X509Context | undefined {
    return this.#current
  }

  /**
   * The current state, waiting for the first one if need be. After `timeoutMs` it rejects with
   * ERR_X509_SOURCE_TIMEOUT, saying what to check given the last error seen.
   */
  async ready (timeoutMs = 30_000): Promise<X509Context> {
    if (this.#closed) throw sourceClosed('X509Source')
    if (this.#current !== undefined) return this.#current
    return await new Promise<X509Context>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter)
        reject(this.#timeoutError(timeoutMs))
      }, timeoutMs)
      const settle = <T>(done: (value: T) => void) => (value: T): void => {
        clearTimeout(timer)
        this.#waiters.delete(waiter)
        done(value)
      }
      const waiter: Waiter = { resolve: settle(resolve), reject: settle(reject) }
      this.#waiters.add(waiter)
    })
  }

  /**
   * Starts the backoff again from its first delay and, if a reconnection is waiting, moves it to that delay: for a
   * caller whose SVID has expired, so the agent's return is noticed at once rather than after the longest delay.
   * With a stream open or being opened it only resets the backoff: never a second stream.
   */
  retrySoon (): void {
    if (this.#closed) return
    this.#backoff.reset()
    if (this.#retry === undefined) return
    clearTimeout(this.#retry)
    this.#scheduleReconnect()
  }

  /** Stops the stream and any reconnection; pending ready() calls reject with ERR_SOURCE_CLOSED. Idempotent. */
  close (): void {
    if (this.#closed) return
    this.#closed = true
    clearTimeout(this.#retry)
    this.#disconnect()
    for (const waiter of this.#waiters) waiter.reject(sourceClosed('X509Source'))
  }

  /**
   * A fresh client per attempt: grpc-js would otherwise keep the dead connection's own backoff (up to 120 s) and
   * fail our calls fast until it ends, so the agent's return would go unnoticed far longer than our backoff says.
   */
  #connect (): void {
    this.#client = new WorkloadClient(this.address)
    this.#cancel = this.#client.watchX509Svids(update => this.#receive(update), err => this.#fail(err))
  }

  #disconnect (): void {
    this.#cancel?.()
    this.#client?.close()
    this.#cancel = undefined
    this.#client = undefined
  }

  #fail (err: Error): void {
    if (this.#closed) return
    this.#report(err)
    // WorkloadClient reports a message it cannot parse with this code and keeps the stream; anything else ended it.
    if (err instanceof WorkloadApiError && err.code === 'ERR_WORKLOAD_API_RESPONSE_INVALID') return
    this.#disconnect()
    this.#scheduleReconnect()
  }

  /** `#retry` is set exactly while a reconnection waits. */
  #scheduleReconnect (): void {
    this.#retry = setTimeout(() => {
      this.#retry = undefined
      this.#connect()
    }, this.#backoff.next())
  }

  #report (err: Error): void {
    this.#lastError = err
    this.#onError(err)
  }

  #receive (update: X509SvidResponseParsed): void {
    if (this.#closed) return
    this.#backoff.reset()
    const svid = this.#pick(update.svids)
    if (svid === undefined) {
      const ids = update.svids.map(s => s.spiffeId).join(', ')
      this.#report(new SourceError('ERR_X509_SOURCE_NO_SVID', `the Workload API at ${this.address} issued ${ids}, but pick chose none of them`))
      return
    }
    const fingerprint = fingerprintOf(update, svid)
    // API §5.2: every message is the full state, re-sent on reconnection; an unchanged one must not rebuild TLS contexts.
    if (fingerprint === this.#fingerprint) return
    const context = toContext(svid, update)
    this.#fingerprint = fingerprint
    this.#current = context
    for (const waiter of this.#waiters) waiter.resolve(context)
    this.emit('update', context)
  }

  #timeoutError (timeoutMs: number): SourceError {
    const err = this.#lastError
    // An unreachable agent is what whatToCheck describes from the socket itself: its message would say it twice.
    const last = err === undefined || (err as { code?: unknown }).code === 'ERR_WORKLOAD_API_UNAVAILABLE' ? '' : ` (last error: ${err.message})`
    return new SourceError('ERR_X509_SOURCE_TIMEOUT',
      `no X509-SVID from the Workload API at ${this.address} within ${timeoutMs} ms: ${whatToCheck(this.address, err)}${last}`, { cause: err })
  }
}

function toContext (svid: X509Svid, update: X509SvidResponseParsed): X509Context {
  const bundles = new BundleSet()
  for (const bundle of update.federatedBundles.values()) bundles.set(new SpiffeBundle(bundle.trustDomain, { x509: bundle }))
  // The bundles that came with the SVIDs are their trust domains' own: they replace a federated entry of the same
  // name, and the chosen SVID's comes first should two SVIDs of one trust domain disagree.
  const own = new Set<string>()
  for (const s of [svid, ...update.svids]) {
    const trustDomain = s.bundle.trustDomain
    if (own.has(trustDomain.name)) continue
    own.add(trustDomain.name)
    bundles.set(new SpiffeBundle(trustDomain, { x509: s.bundle }))
  }
  return Object.freeze({
    svid,
    svids: Object.freeze([...update.svids]),
    bundles,
    spiffeId: parseSpiffeId(svid.spiffeId),
    notAfter: new Date(new X509Certificate(svid.chain[0]).validTo),
    receivedAt: new Date()
  })
}

/** A digest of what TLS contexts are built from: the choice, every SVID's ID and leaf, every bundle's authorities. */
function fingerprintOf (update: X509SvidResponseParsed, chosen: X509Svid): string {
  const hash = createHash('sha256')
  const add = (label: string, data: string | Buffer): void => {
    hash.update(`${label}:${data.length}:`).update(data)
  }
  add('chosen', chosen.chain[0])
  for (const svid of update.svids) {
    add('svid', svid.spiffeId)
    add('leaf', svid.chain[0])
    add('bundle', svid.bundle.toDer())
  }
  for (const [name, bundle] of [...update.federatedBundles].sort(([a], [b]) => a < b ? -1 : 1)) {
    add('federated', name)
    add('bundle', bundle.toDer())
  }
  return hash.digest('hex')
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
  const target = workloadEndpoint(address)
  if (!target.startsWith('unix://')) return `is the agent running and listening on ${address}?`
  const path = target.slice('unix://'.length)
  const stat = statSync(path, { throwIfNoEntry: false })
  if (stat === undefined) return `the socket ${path} does not exist: is the agent running, and is this its address (${ENDPOINT_SOCKET_ENV})?`
  if (!stat.isSocket()) return `${path} is not a socket: is this the agent's address (${ENDPOINT_SOCKET_ENV})?`
  return `the socket ${path} exists but the agent does not answer on it: is the agent running and ready?`
}
