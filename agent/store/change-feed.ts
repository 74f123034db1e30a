/**
 * The store's change feed: listeners hear every committed change (of a registration entry, a federated bundle, the
 * authorities appended to our own trust domain's bundle, or an attested agent),
 * synchronously and in commit order. A listener
 * that writes to the store from its callback queues that change behind the current one instead of overtaking it,
 * and a listener that throws is logged and skipped, never allowed to break the store or the other listeners.
 */
import type { Logger } from 'pino'
import type { AppendedAuthoritiesChange } from './appended-authority'
import type { AttestedAgentChange } from './attested-agent'
import type { EntryChange } from './entry'
import type { FederatedBundleChange } from './federated-bundle'
import type { RelationshipChange } from './federation-relationship'

/**
 * What one committed write changed: an entry (created, updated, deleted), a federated bundle (set, deleted), the
 * appended authorities of our own bundle, or an attested agent (attested, banned, evicted). An entry's change
 * carries the `entry`, an agent's the `agent`, every other change names the trust domain of its `bundle`.
 */
export type StoreChange = EntryChange | FederatedBundleChange | AppendedAuthoritiesChange | AttestedAgentChange | RelationshipChange

export type ChangeListener = (change: StoreChange) => void

export class ChangeFeed {
  readonly #listeners = new Set<ChangeListener>()
  readonly #queue: StoreChange[] = []
  #delivering = false
  readonly #logger: Logger

  constructor (logger: Logger) {
    this.#logger = logger
  }

  /** Adds a listener; returns the function that removes it. */
  subscribe (listener: ChangeListener): () => void {
    // A wrapper per subscription, so subscribing the same function twice needs two unsubscribes, like events.
    const subscription: ChangeListener = change => listener(change)
    this.#listeners.add(subscription)
    return () => { this.#listeners.delete(subscription) }
  }

  /** Delivers a committed change to every listener, after any change still being delivered. */
  publish (change: StoreChange): void {
    this.#queue.push(change)
    if (this.#delivering) return
    this.#delivering = true
    try {
      for (let next = this.#queue.shift(); next !== undefined; next = this.#queue.shift()) this.#deliver(next)
    } finally {
      this.#delivering = false
    }
  }

  clear (): void {
    this.#listeners.clear()
  }

  #deliver (change: StoreChange): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(change)
      } catch (err) {
        this.#logger.error({ err, change: summary(change) }, 'a registration change listener threw; the change is committed and other listeners still get it')
      }
    }
  }
}

/** The change as a log field: what changed, by its ID, and the revision. */
function summary (change: StoreChange): object {
  const subject = 'entry' in change
    ? { entryId: change.entry.id }
    : 'agent' in change
      ? { agentId: change.agent.spiffeId }
      : { trustDomain: ('relationship' in change ? change.relationship : change.bundle).trustDomain.name }
  return { kind: change.kind, ...subject, storeRevision: change.storeRevision }
}
