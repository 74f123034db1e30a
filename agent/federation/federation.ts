/**
 * The agent's side of federation that fetches: one RelationshipFetcher per relationship in the store, started,
 * changed and stopped as the store's change feed says (relationships made at run time, through `chaperone
 * federation` or SPIRE's TrustDomain API, apply at once). The config file's relationships are made the store's
 * 'config' ones at start. Its status feeds `chaperone federation list|show`, `bundle show --federated` and metrics.
 */
import type { Logger } from 'pino'
import type { TrustDomain } from '../../spiffe/id'
import type { SpiffeBundle } from '../../spiffe/spiffe-bundle'
import type { AgentCa } from '../ca'
import { isRelationshipChange } from '../store'
import type { FederatedBundle, FederationRelationship, RegistrationStore } from '../store'
import type { FederationConfig } from './federation-config'
import { RelationshipFetcher } from './relationship-fetcher'
import type { FetchStatus, RelationshipFetcherDeps } from './relationship-fetcher'

export interface FederationOptions {
  readonly store: RegistrationStore
  readonly ca: Pick<AgentCa, 'bundle'>
  readonly config: Pick<FederationConfig, 'relationships' | 'minimumRefreshMs'>
  readonly logger: Logger
  /** Fetch settings for tests (web CAs, timeouts). */
  readonly fetchOptions?: RelationshipFetcherDeps['fetchOptions']
}

/** A relationship, how its fetching goes, and the bundle held for its trust domain. */
export interface RelationshipStatus {
  readonly relationship: FederationRelationship
  readonly fetch: FetchStatus
  readonly bundle?: FederatedBundle
}

export class Federation {
  readonly #store: RegistrationStore
  readonly #fetchers = new Map<string, RelationshipFetcher>()
  readonly #deps: RelationshipFetcherDeps
  readonly #unsubscribe: () => void

  private constructor (options: FederationOptions) {
    const { store, ca } = options
    this.#store = store
    const own = (): SpiffeBundle => store.ownBundle(ca.bundle())
    this.#deps = {
      store,
      bundleFor: (trustDomain: TrustDomain) => trustDomain.equals(own().trustDomain) ? own() : store.findFederatedBundle(trustDomain.name)?.bundle,
      logger: options.logger.child({ component: 'federation' }),
      minimumRefreshMs: options.config.minimumRefreshMs,
      ...(options.fetchOptions === undefined ? {} : { fetchOptions: options.fetchOptions })
    }
    this.#unsubscribe = store.onChange(change => {
      if (!isRelationshipChange(change)) return
      const name = change.relationship.trustDomain.name
      if (change.kind === 'relationship-deleted') this.#stopFetcher(name)
      else if (this.#fetchers.has(name)) this.#fetchers.get(name)?.update(change.relationship)
      else this.#startFetcher(change.relationship)
    })
  }

  /** Makes the config file's relationships the store's, then fetches for every relationship. Throws the store's errors. */
  static start (options: FederationOptions): Federation {
    const federation = new Federation(options)
    try {
      options.store.relationships.syncFromConfig(options.config.relationships)
      for (const relationship of options.store.relationships.list()) {
        if (!federation.#fetchers.has(relationship.trustDomain.name)) federation.#startFetcher(relationship)
      }
    } catch (err) {
      federation.stop()
      throw err
    }
    return federation
  }

  /** Fetches a relationship's bundle now; throws ERR_RELATIONSHIP_NOT_FOUND, or the fetch's error. */
  async refresh (trustDomain: string): Promise<void> {
    const relationship = this.#store.relationships.get(trustDomain)
    const fetcher = this.#fetchers.get(relationship.trustDomain.name) ?? this.#startFetcher(relationship)
    await fetcher.refresh()
  }

  /** Every relationship with its fetching and bundle, by trust domain. */
  status (): RelationshipStatus[] {
    return this.#store.relationships.list().map(relationship => this.#statusOf(relationship))
  }

  /** One relationship's status; throws ERR_RELATIONSHIP_NOT_FOUND. */
  statusOf (trustDomain: string): RelationshipStatus {
    return this.#statusOf(this.#store.relationships.get(trustDomain))
  }

  stop (): void {
    this.#unsubscribe()
    for (const name of [...this.#fetchers.keys()]) this.#stopFetcher(name)
  }

  #statusOf (relationship: FederationRelationship): RelationshipStatus {
    const name = relationship.trustDomain.name
    const bundle = this.#store.findFederatedBundle(name)
    return { relationship, fetch: this.#fetchers.get(name)?.status ?? { consecutiveFailures: 0, failures: {} }, ...(bundle === undefined ? {} : { bundle }) }
  }

  #startFetcher (relationship: FederationRelationship): RelationshipFetcher {
    const fetcher = new RelationshipFetcher(relationship, this.#deps).start()
    this.#fetchers.set(relationship.trustDomain.name, fetcher)
    return fetcher
  }

  #stopFetcher (name: string): void {
    this.#fetchers.get(name)?.stop()
    this.#fetchers.delete(name)
  }
}
