/**
 * The Workload API's open streams, and what moves them: each stream gets its full state at once and again after
 * every change that concerns it (an entry created, updated or deleted, an SVID renewed, our own bundle changed by
 * the CA or by appended authorities, a federated bundle its entries federate with set or deleted). Updates to one
 * stream are coalesced: a burst of changes sends one message with the latest state.
 */
import { status } from '@grpc/grpc-js'
import type { ServerWritableStream } from '@grpc/grpc-js'
import type { Logger } from 'pino'
import type { AgentCa } from '../ca'
import { isAppendedAuthoritiesChange, isAttestedAgentChange, isFederatedBundleChange } from '../store'
import type { RegistrationEntry, RegistrationStore, StoreChange } from '../store'
import type { Caller } from './caller'
import type { X509SvidCache } from './svid-cache'
import { federatedBundlesOf, federatedTrustDomains } from './federation'
import { jwtBundlesResponse, x509BundlesResponse, x509SvidResponse } from './messages'
import { NO_IDENTITY, endStream, statusError } from './status-error'
import { watchOwnBundle } from './own-bundle-watch'
import { CoalescedUpdates } from './coalesced-updates'

type Kind = 'x509-svid' | 'x509-bundles' | 'jwt-bundles'

interface Stream {
  readonly kind: Kind
  readonly caller: Caller
  /** The caller's selectors as one string: streams of one workload share a lookup per change. */
  readonly selectorsKey: string
  readonly call: ServerWritableStream<unknown, unknown>
  /** The caller's entries as of the latest change (the SVIDs and federated bundles the next message carries). */
  entries: readonly RegistrationEntry[]
  readonly updates: CoalescedUpdates
}

export interface StreamHubDeps {
  readonly store: RegistrationStore
  readonly ca: AgentCa
  readonly cache: X509SvidCache
  readonly logger: Logger
}

/** The entries' IDs and revisions: what an SVID set and its federated bundles depend on. */
export const svidEntriesKey = (entries: readonly RegistrationEntry[]): string => entries.map(e => `${e.id}@${e.revision}`).join(',')

/** What of the caller's entries a stream's messages depend on: the entries themselves for SVIDs, the trust domains they federate with for bundles. */
const entriesKey = (kind: Kind, entries: readonly RegistrationEntry[]): string => kind === 'x509-svid'
  ? svidEntriesKey(entries)
  : federatedTrustDomains(entries).join(',')

export class StreamHub {
  readonly #deps: StreamHubDeps
  readonly #streams = new Set<Stream>()
  readonly #unsubscribe: Array<() => void>

  constructor (deps: StreamHubDeps) {
    this.#deps = deps
    this.#unsubscribe = [
      deps.store.onChange(change => { this.#storeChanged(change) }),
      deps.cache.onRenew(entryId => {
        for (const stream of this.#streams) if (stream.entries.some(entry => entry.id === entryId)) this.#push(stream)
      }),
      watchOwnBundle(deps.ca, deps.store, () => { for (const stream of this.#streams) this.#push(stream) })
    ]
  }

  get size (): number {
    return this.#streams.size
  }

  /** Registers a stream and sends its first message; it stays open until the client cancels or the agent stops. */
  open (kind: Kind, caller: Caller, entries: readonly RegistrationEntry[], call: ServerWritableStream<unknown, unknown>): void {
    const selectorsKey = caller.selectors.map(selector => `${selector.type}:${selector.value}`).join('\n')
    const stream: Stream = {
      kind,
      caller,
      selectorsKey,
      call,
      entries,
      updates: new CoalescedUpdates(async () => { await this.#send(stream) }, (err: unknown) => {
        this.#deps.logger.error({ err, pid: caller.pid }, 'workload API: could not update a stream; closing it')
        this.#fail(stream, status.UNAVAILABLE, 'the agent could not produce an update')
      }, () => this.#streams.has(stream))
    }
    this.#streams.add(stream)
    const remove = (): void => { this.#streams.delete(stream) }
    call.on('cancelled', remove)
    call.on('close', remove)
    call.on('error', remove)
    this.#push(stream)
  }

  /** Ends every stream (the agent is stopping). */
  close (): void {
    for (const unsubscribe of this.#unsubscribe) unsubscribe()
    for (const stream of this.#streams) stream.call.end()
    this.#streams.clear()
  }

  #storeChanged (change: StoreChange): void {
    // Our own bundle's changes reach every stream through watchOwnBundle; agents attesting to the fleet port change
    // no workload's entries.
    if (isAppendedAuthoritiesChange(change) || isAttestedAgentChange(change)) return
    if (isFederatedBundleChange(change)) {
      const name = change.bundle.trustDomain.name
      for (const stream of this.#streams) if (federatedTrustDomains(stream.entries).includes(name)) this.#push(stream)
      return
    }
    if (change.kind === 'deleted') this.#deps.cache.forget(change.entry.id)
    // One store lookup per workload, however many streams it has open.
    const lookups = new Map<string, readonly RegistrationEntry[]>()
    for (const stream of this.#streams) {
      let entries = lookups.get(stream.selectorsKey)
      if (entries === undefined) {
        entries = this.#deps.store.entriesForSelectors(stream.caller.selectors)
        lookups.set(stream.selectorsKey, entries)
      }
      this.#refreshEntries(stream, entries)
    }
  }

  #refreshEntries (stream: Stream, entries: readonly RegistrationEntry[]): void {
    const changed = entriesKey(stream.kind, entries) !== entriesKey(stream.kind, stream.entries)
    stream.entries = entries
    if (changed) this.#push(stream)
  }

  /** Sends the stream's full current state; a push requested while one is in flight is sent after it, once. */
  #push (stream: Stream): void {
    stream.updates.request()
  }

  async #send (stream: Stream): Promise<void> {
    const bundle = this.#deps.store.ownBundle(this.#deps.ca.bundle())
    const entries = stream.entries
    const federated = federatedBundlesOf(this.#deps.store, entries)
    // A bundle stream whose caller lost its last entry goes on with our own bundle (no federated ones): verifying
    // others needs no identity of its own.
    if (stream.kind === 'x509-bundles') return void stream.call.write(x509BundlesResponse(bundle, federated))
    if (stream.kind === 'jwt-bundles') return void stream.call.write(jwtBundlesResponse(bundle, federated))
    if (entries.length === 0) {
      // The workload's last entry is gone: it has no identity any more (as SPIRE answers).
      const err = NO_IDENTITY()
      return this.#fail(stream, err.code, err.details)
    }
    const svids = []
    for (const entry of entries) svids.push(await this.#deps.cache.get(entry))
    if (this.#streams.has(stream)) stream.call.write(x509SvidResponse(svids, bundle, federated, this.#deps.logger))
  }

  #fail (stream: Stream, code: status, details: string): void {
    this.#streams.delete(stream)
    endStream(stream.call, statusError(code, details))
  }
}
