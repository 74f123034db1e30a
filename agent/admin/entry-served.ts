/**
 * Whether this agent issues an entry, and if not why, for `chaperone entry show|list`: entries registered through
 * SPIRE's server API may be parented on another agent (SPIRE's parent rule, RegistrationStore.isServed), be meant
 * for an SVIDStore, or have expired; all are stored, none is issued here.
 */
import type { RegistrationEntry, RegistrationStore } from '../store'

/** Why the entry is not issued by this agent at `now` (unix seconds); null when it is. */
export function notServedReason (store: Pick<RegistrationStore, 'isServed' | 'agentId'>, entry: RegistrationEntry, now: number): string | null {
  if (entry.storeSvid) return 'it is for an SVIDStore (store_svid): SPIRE agents hand such SVIDs to a store plugin; this agent issues none'
  if (entry.expiresAt !== null && entry.expiresAt <= now) return `it expired at ${new Date(entry.expiresAt * 1000).toISOString()}`
  if (!store.isServed(entry)) {
    return `its parent ID ${entry.parentId ?? ''} does not lead to this agent's ID (${store.agentId}): ` +
      'it is parented on another agent, or on an entry this agent does not serve'
  }
  return null
}
