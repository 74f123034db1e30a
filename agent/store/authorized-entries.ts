/**
 * The entries an attested agent may fetch, by SPIRE's rule (pkg/server/authorizedentries/cache.go
 * GetAuthorizedEntries, appendDescendents, getAgentAliases): those parented on the agent's ID; those parented on the
 * SPIFFE ID of a node alias, an entry parented on the server's ID (`spiffe://<td>/spire/server`, SPIRE's `-node`
 * entries) whose selectors are all among the agent's; and, recursively, those parented on the SPIFFE ID of any entry
 * already included.
 */
import type { RegistrationEntry } from './entry'
import type { CreatedEntry, EntryTable } from './entry-table'
import { uniqueSelectors } from './selectors'
import type { Selector } from './selectors'

/**
 * Walks the parent IDs breadth-first, one indexed lookup per ID and each ID once, so every entry (it has one parent)
 * is found once, a cycle ends, and a long chain needs no recursion. Alias entries themselves are never included: SPIRE
 * keeps them apart from the entries it crawls, so the server's ID is never crawled. An entry expired at `now` counts
 * as absent, also as an alias or a parent: SPIRE's server deletes entries once expired (pkg/server/registration
 * manager.go prune, every 5 minutes), and serves none after. In creation order.
 */
export function authorizedEntries (entries: EntryTable, agentId: string, selectors: readonly Selector[], serverId: string, now: number): RegistrationEntry[] {
  const seen = new Set<string>([serverId])
  const pending = [agentId, ...entries.nodeAliases(uniqueSelectors(selectors), serverId, now)]
  const found: CreatedEntry[] = []
  for (let i = 0; i < pending.length; i++) {
    const parentId = pending[i]
    if (seen.has(parentId)) continue
    seen.add(parentId)
    for (const child of entries.childrenOf(parentId, now)) {
      found.push(child)
      pending.push(child.entry.spiffeId)
    }
  }
  return found.sort((a, b) => a.creationOrder - b.creationOrder).map(created => created.entry)
}
