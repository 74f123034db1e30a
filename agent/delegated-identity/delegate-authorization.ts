/**
 * Who may call the Delegated Identity API (SPIRE's authorized_delegates): the caller is attested from the kernel's
 * word on its connection, as a Workload API caller is (never from anything it sends), and one of the entries its
 * selectors earn must have a SPIFFE ID in the configured list. The selectors attested when a call started are kept
 * (SPIRE's cached selectors) and checked again whenever a stream is updated, so that deleting the delegate's entry, or
 * changing its SPIFFE ID, ends its streams. Every refusal is logged at warn, at most once per uid per 10 s.
 */
import type { Logger } from 'pino'
import { RateLimitedLog } from '../../log/limited-log'
import type { WorkloadAttestor } from '../attestation'
import type { RegistrationStore } from '../store'
import type { WorkloadAdmission } from '../workload/admission'
import { attestCaller } from '../workload/caller'
import type { Caller } from '../workload/caller'
import type { ConnectionRegistry } from '../workload/connections'
import { ATTESTATION_FAILED, NOT_A_DELEGATE, NO_IDENTITY } from './statuses'

/** A caller let in as a delegate. */
export interface Delegate {
  /** Its pid and uid, and the selectors attested when its call started. */
  readonly caller: Caller
  /** The SPIFFE ID of the entry that made it a delegate. */
  readonly spiffeId: string
}

/** Where one socket's callers are known: its connections, and (on a socket with limits) its admission. */
export interface DelegateConnections {
  readonly connections: Pick<ConnectionRegistry, 'get'>
  readonly admission?: Pick<WorkloadAdmission, 'identified'>
}

export interface DelegateAuthorizationOptions {
  /** Canonical SPIFFE IDs. */
  readonly authorizedDelegates: readonly string[]
  readonly store: Pick<RegistrationStore, 'entriesForSelectors'>
  readonly attestor: WorkloadAttestor
  readonly logger: Logger
}

/** How many of a refused caller's SPIFFE IDs the log line names. */
const LOGGED_IDS = 8

export class DelegateAuthorization {
  readonly #delegates: ReadonlySet<string>
  readonly #store: Pick<RegistrationStore, 'entriesForSelectors'>
  readonly #attestor: WorkloadAttestor
  readonly #refusals: RateLimitedLog

  constructor (options: DelegateAuthorizationOptions) {
    this.#delegates = new Set(options.authorizedDelegates)
    this.#store = options.store
    this.#attestor = options.attestor
    this.#refusals = new RateLimitedLog(options.logger)
  }

  /** Attests the caller on the connection of `peer` and lets it in as a delegate; throws SPIRE's status otherwise. */
  async authorize (socket: DelegateConnections, peer: string): Promise<Delegate> {
    const attested = await attestCaller({ connections: socket.connections, attestor: this.#attestor }, peer)
    if ('failure' in attested) {
      const { failure, ...fields } = attested
      this.#refusals.warn(`attestation ${failure}`, { reason: failure, ...fields }, 'delegated identity API: workload attestation failed')
      throw ATTESTATION_FAILED()
    }
    const delegate = this.check(attested)
    // A delegate is a known caller: it may use the descriptors kept in reserve (agent/workload/admission.ts).
    socket.admission?.identified(attested.uid)
    return delegate
  }

  /** The caller as a delegate, by the entries its selectors earn now; throws SPIRE's PERMISSION_DENIED (logged) if it is none. */
  check (caller: Caller): Delegate {
    const entries = this.#store.entriesForSelectors(caller.selectors)
    const authorized = entries.find(entry => this.#delegates.has(entry.spiffeId))
    if (authorized !== undefined) return { caller, spiffeId: authorized.spiffeId }
    const denial = entries.length === 0 ? NO_IDENTITY() : NOT_A_DELEGATE()
    this.#refusals.warn(`uid ${caller.uid}`, {
      uid: caller.uid, pid: caller.pid, reason: denial.details, spiffeIds: entries.slice(0, LOGGED_IDS).map(entry => entry.spiffeId), entries: entries.length
    }, 'delegated identity API: caller refused')
    throw denial
  }
}
