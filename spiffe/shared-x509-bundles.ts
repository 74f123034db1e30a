/**
 * The X.509 bundles of the Delegated Identity API's SubscribeToX509Bundles, on ONE stream per client however many
 * delegated workloads use them: a node proxy serving tens of apps would otherwise hold tens of identical streams,
 * each carrying every trust domain's authorities on every change. The stream opens with the first subscriber and
 * closes with the last; it reconnects with backoff and keeps the last good bundles while the agent is away.
 */
import { createHash } from 'node:crypto'
import { Backoff } from './backoff'
import type { BackoffOptions } from './backoff'
import { isInvalidResponse } from './delegated-identity-errors'
import { ReconnectingStream } from './reconnecting-stream'
import type { X509Bundle } from './x509-bundle'

/** The bundles by trust domain name (e.g. `example.org`): the agent's own and every federated one. */
export type X509BundleMap = ReadonlyMap<string, X509Bundle>

export interface X509BundlesSubscriber {
  /** Every change (an identical set sent again is not one). */
  onUpdate: (bundles: X509BundleMap) => void
  /** Every failure: of the stream (it reconnects) or of a message (the last good bundles stay). */
  onError: (err: Error) => void
}

/** Opens the raw stream (DelegatedIdentityClient.subscribeToX509Bundles); what it returns cancels it. */
export type OpenX509BundlesStream = (onUpdate: (bundles: Map<string, X509Bundle>) => void, onError: (err: Error) => void) => () => void

export class SharedX509Bundles {
  readonly #open: OpenX509BundlesStream
  readonly #backoff: Backoff
  readonly #subscribers = new Set<X509BundlesSubscriber>()
  #stream?: ReconnectingStream
  #current?: X509BundleMap
  #fingerprint?: string

  constructor (open: OpenX509BundlesStream, backoff?: BackoffOptions) {
    this.#open = open
    this.#backoff = new Backoff(backoff)
  }

  /** The last good bundles, or undefined before the first arrived (or with no subscriber). */
  get current (): X509BundleMap | undefined {
    return this.#current
  }

  get subscriberCount (): number {
    return this.#subscribers.size
  }

  /**
   * Hears every change and failure until the returned function is called; the first subscriber opens the stream,
   * the last one leaving closes it. A subscriber joining later reads `current` for what arrived before it.
   */
  subscribe (subscriber: X509BundlesSubscriber): () => void {
    const entry = { ...subscriber }
    this.#subscribers.add(entry)
    this.#stream ??= new ReconnectingStream(() => this.#open(bundles => this.#receive(bundles), err => this.#fail(err)), this.#backoff)
    return () => {
      if (!this.#subscribers.delete(entry) || this.#subscribers.size > 0) return
      this.close()
    }
  }

  /** Asks the stream to reconnect soon if it is waiting to (see ReconnectingStream.retrySoon). */
  retrySoon (): void {
    this.#stream?.retrySoon()
  }

  /** Closes the stream and forgets the bundles and subscribers (a later subscriber opens it again). */
  close (): void {
    this.#subscribers.clear()
    this.#stream?.stop()
    this.#stream = undefined
    this.#backoff.reset()
    this.#current = undefined
    this.#fingerprint = undefined
  }

  #receive (bundles: Map<string, X509Bundle>): void {
    this.#stream?.answered()
    const fingerprint = fingerprintOf(bundles)
    if (fingerprint === this.#fingerprint) return
    this.#fingerprint = fingerprint
    this.#current = bundles
    for (const subscriber of [...this.#subscribers]) subscriber.onUpdate(bundles)
  }

  #fail (err: Error): void {
    for (const subscriber of [...this.#subscribers]) subscriber.onError(err)
    if (!isInvalidResponse(err)) this.#stream?.failed()
  }
}

/** A digest of every trust domain's name and authorities, in name order. */
function fingerprintOf (bundles: Map<string, X509Bundle>): string {
  const hash = createHash('sha256')
  for (const [name, bundle] of [...bundles].sort(([a], [b]) => a < b ? -1 : 1)) {
    const der = bundle.toDer()
    hash.update(`${name.length}:${name}:${der.length}:`).update(der)
  }
  return hash.digest('hex')
}
