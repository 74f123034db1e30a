/**
 * The Delegated Identity API's open streams, and what moves them. Each gets its full state at once and again after
 * every change that concerns it, a burst of changes coalesced into one message (agent/workload/coalesced-updates.ts):
 * - a subject's X509-SVIDs: its entries created, updated or deleted, an SVID renewed, our own bundle changed (SPIRE's
 *   agent then updates every subscriber), a federated bundle its entries federate with set or deleted;
 * - the bundles (X.509, JWT): our own bundle changed, any federated bundle set or deleted.
 * The delegate is checked again (delegate-authorization.ts) before every message and after every change of the
 * entries: one no longer authorized has its streams ended PERMISSION_DENIED. A stream that follows a PID ends
 * NOT_FOUND once that process is gone, checked before every message and every few seconds, so a delegate never goes
 * on receiving the identity of a PID that now names another process.
 */
import { status } from '@grpc/grpc-js'
import type { ServerWritableStream, ServiceError } from '@grpc/grpc-js'
import type { Logger } from 'pino'
import { isRunning } from '../attestation'
import type { AgentCa } from '../ca'
import { formatSelector, isAppendedAuthoritiesChange, isAttestedAgentChange, isFederatedBundleChange, isRelationshipChange } from '../store'
import type { RegistrationEntry, RegistrationStore, Selector, StoreChange } from '../store'
import { CoalescedUpdates } from '../workload/coalesced-updates'
import { federatedBundlesOf, federatedTrustDomains } from '../workload/federation'
import { watchOwnBundle } from '../workload/own-bundle-watch'
import { endStream, statusError } from '../workload/status-error'
import { svidEntriesKey } from '../workload/stream-hub'
import type { X509SvidCache } from '../workload/svid-cache'
import type { Delegate, DelegateAuthorization } from './delegate-authorization'
import { jwtBundlesResponse, x509BundlesResponse, x509SvidsResponse } from './messages'
import { PROCESS_EXITED, TOO_MANY_STREAMS } from './statuses'
import { describeSubject } from './workload-subject'
import type { WorkloadSubject } from './workload-subject'

export type SubscriptionKind = 'x509-svids' | 'x509-bundles' | 'jwt-bundles'

interface Subscription {
  readonly kind: SubscriptionKind
  readonly delegate: Delegate
  /** Whose SVIDs (x509-svids only). */
  readonly subject?: WorkloadSubject
  readonly call: ServerWritableStream<unknown, unknown>
  /** The subject's entries as of the latest change. */
  entries: readonly RegistrationEntry[]
  readonly updates: CoalescedUpdates
  /** How many SVIDs (or trust domains) the last message carried; undefined before the first. */
  sent?: number
}

export interface SubscriptionsDeps {
  readonly store: RegistrationStore
  readonly ca: AgentCa
  /** The Workload API's SVIDs: a workload and its delegate are given the same SVID, renewed once. */
  readonly cache: X509SvidCache
  readonly authorization: Pick<DelegateAuthorization, 'check'>
  readonly logger: Logger
  /** Streams one uid may hold open at once (MAX_STREAMS_PER_UID unless given). */
  readonly maxStreamsPerUid?: number
  /** How often the processes PID streams follow are checked (PROCESS_CHECK_MS unless given). */
  readonly processCheckMs?: number
}

/** A node proxy opens a few streams, or one per workload process it serves. */
export const MAX_STREAMS_PER_UID = 1024
export const PROCESS_CHECK_MS = 2000

/** Admin and downstream entries' SVIDs are never handed to a delegate (SPIRE: X.509 always, JWT since #6972). */
export const isDelegable = (entry: RegistrationEntry): boolean => !entry.admin && !entry.downstream

export class DelegatedSubscriptions {
  readonly #deps: SubscriptionsDeps
  readonly #subscriptions = new Set<Subscription>()
  readonly #perUid = new Map<number, number>()
  readonly #maxPerUid: number
  readonly #unsubscribe: Array<() => void>
  readonly #processCheck: NodeJS.Timeout

  constructor (deps: SubscriptionsDeps) {
    this.#deps = deps
    this.#maxPerUid = deps.maxStreamsPerUid ?? MAX_STREAMS_PER_UID
    this.#unsubscribe = [
      deps.store.onChange(change => { this.#storeChanged(change) }),
      deps.cache.onRenew(entryId => {
        for (const sub of this.#subscriptions) if (sub.entries.some(entry => entry.id === entryId)) sub.updates.request()
      }),
      watchOwnBundle(deps.ca, deps.store, () => { for (const sub of this.#subscriptions) sub.updates.request() })
    ]
    this.#processCheck = setInterval(() => {
      for (const sub of [...this.#subscriptions]) if (sub.subject?.pin !== undefined && !isRunning(sub.subject.pin)) this.#processGone(sub)
    }, deps.processCheckMs ?? PROCESS_CHECK_MS).unref()
  }

  get size (): number {
    return this.#subscriptions.size
  }

  /** Registers a stream and sends its first message; it stays open until the delegate cancels, a check ends it, or the agent stops. */
  open (kind: SubscriptionKind, delegate: Delegate, subject: WorkloadSubject | undefined, call: ServerWritableStream<unknown, unknown>): void {
    if (call.cancelled) return
    const { uid } = delegate.caller
    const held = this.#perUid.get(uid) ?? 0
    if (held >= this.#maxPerUid) {
      this.#deps.logger.warn({ stream: kind, delegate: delegate.spiffeId, uid, pid: delegate.caller.pid, limit: this.#maxPerUid }, 'delegated identity API: stream refused, the uid holds the most streams it may')
      return endStream(call, TOO_MANY_STREAMS(uid, this.#maxPerUid))
    }
    this.#perUid.set(uid, held + 1)
    const entries = subject === undefined ? [] : this.#deps.store.entriesForSelectors(subject.selectors)
    const sub: Subscription = {
      kind,
      delegate,
      ...(subject === undefined ? {} : { subject }),
      call,
      entries,
      updates: new CoalescedUpdates(async () => { await this.#send(sub) }, (err: unknown) => {
        this.#deps.logger.error({ err, delegate: delegate.spiffeId }, 'delegated identity API: could not update a stream; closing it')
        this.#end(sub, statusError(status.UNAVAILABLE, 'the agent could not produce an update'))
      }, () => this.#subscriptions.has(sub))
    }
    this.#subscriptions.add(sub)
    for (const event of ['cancelled', 'close', 'error']) call.on(event, () => { this.#remove(sub, 'the delegate closed it') })
    sub.updates.request()
  }

  /** Ends every stream (the agent is stopping). */
  close (): void {
    clearInterval(this.#processCheck)
    for (const unsubscribe of this.#unsubscribe) unsubscribe()
    for (const sub of [...this.#subscriptions]) {
      this.#remove(sub, 'the agent is stopping')
      sub.call.end()
    }
  }

  #storeChanged (change: StoreChange): void {
    // Our own bundle's changes come through watchOwnBundle; agents attesting to the fleet port and federation
    // relationships (whose fetched bundles arrive as federated bundle changes) change no workload's entries.
    if (isAppendedAuthoritiesChange(change) || isAttestedAgentChange(change) || isRelationshipChange(change)) return
    if (isFederatedBundleChange(change)) {
      const name = change.bundle.trustDomain.name
      for (const sub of this.#subscriptions) if (sub.kind !== 'x509-svids' || federatedTrustDomains(sub.entries).includes(name)) sub.updates.request()
      return
    }
    // One lookup per delegate and one per subject, however many streams they have open.
    const denials = new Map<string, ServiceError | undefined>()
    const lookups = new Map<string, readonly RegistrationEntry[]>()
    for (const sub of [...this.#subscriptions]) {
      const delegateKey = selectorsKey(sub.delegate.caller.selectors)
      if (!denials.has(delegateKey)) denials.set(delegateKey, this.#denial(sub.delegate))
      const denial = denials.get(delegateKey)
      if (denial !== undefined) {
        this.#end(sub, denial)
        continue
      }
      if (sub.subject === undefined) continue
      const subjectKey = selectorsKey(sub.subject.selectors)
      const entries = lookups.get(subjectKey) ?? this.#deps.store.entriesForSelectors(sub.subject.selectors)
      lookups.set(subjectKey, entries)
      const changed = svidEntriesKey(entries) !== svidEntriesKey(sub.entries)
      sub.entries = entries
      if (changed) sub.updates.request()
    }
  }

  /** Sends the stream's full current state, after checking that its process lives and its delegate is still one. */
  async #send (sub: Subscription): Promise<void> {
    if (sub.subject?.pin !== undefined && !isRunning(sub.subject.pin)) return this.#processGone(sub)
    const denial = this.#denial(sub.delegate)
    if (denial !== undefined) return this.#end(sub, denial)
    const { store, ca, cache } = this.#deps
    if (sub.kind === 'x509-svids') {
      const entries = sub.entries
      const svids = []
      for (const entry of entries.filter(isDelegable)) svids.push(await cache.get(entry))
      if (!this.#subscriptions.has(sub)) return
      sub.call.write(x509SvidsResponse(svids, federatedBundlesOf(store, entries)))
      return this.#sent(sub, svids.length)
    }
    const bundles = [store.ownBundle(ca.bundle()), ...store.listFederatedBundles().map(federated => federated.bundle)]
    sub.call.write(sub.kind === 'x509-bundles' ? x509BundlesResponse(bundles) : jwtBundlesResponse(bundles))
    this.#sent(sub, bundles.length)
  }

  #denial (delegate: Delegate): ServiceError | undefined {
    try {
      this.#deps.authorization.check(delegate.caller)
      return undefined
    } catch (err) {
      return err as ServiceError
    }
  }

  #sent (sub: Subscription, count: number): void {
    const first = sub.sent === undefined
    sub.sent = count
    const fields = { ...this.#fields(sub), [sub.kind === 'x509-svids' ? 'svids' : 'trustDomains']: count }
    if (first) this.#deps.logger.info(fields, 'delegated identity API: subscription opened')
    else this.#deps.logger.debug(fields, 'delegated identity API: subscription updated')
  }

  #processGone (sub: Subscription): void {
    const pid = sub.subject?.pin?.pid ?? 0
    this.#deps.logger.info({ ...this.#fields(sub) }, `delegated identity API: process ${pid} has exited (or its PID now names another process); ending its subscription`)
    this.#end(sub, PROCESS_EXITED(pid))
  }

  /** Ends a stream with a status, logged. */
  #end (sub: Subscription, err: ServiceError): void {
    if (!this.#remove(sub, err.details, status[err.code])) return
    endStream(sub.call, err)
  }

  /** Forgets a stream (once), logging why it closed; false if it was already gone. */
  #remove (sub: Subscription, reason: string, code?: string): boolean {
    if (!this.#subscriptions.delete(sub)) return false
    const uid = sub.delegate.caller.uid
    const held = (this.#perUid.get(uid) ?? 1) - 1
    if (held > 0) this.#perUid.set(uid, held)
    else this.#perUid.delete(uid)
    this.#deps.logger.info({ ...this.#fields(sub), reason, ...(code === undefined ? {} : { code }), ...(sub.sent === undefined ? {} : { lastSent: sub.sent }) },
      'delegated identity API: subscription closed')
    return true
  }

  #fields (sub: Subscription): Record<string, unknown> {
    const { caller, spiffeId } = sub.delegate
    return { stream: sub.kind, delegate: spiffeId, uid: caller.uid, pid: caller.pid, ...(sub.subject === undefined ? {} : describeSubject(sub.subject)) }
  }
}

function selectorsKey (selectors: readonly Selector[]): string {
  return selectors.map(formatSelector).join('\n')
}
