/**
 * Which authorized entry is the device's own: the one with `downstream` set that is parented on the agent (its ID,
 * or an alias: a parent that is no other authorized entry's SPIFFE ID). Entries parented on an authorized entry are
 * descendants SPIRE lists too (authorized-entries.ts); they are someone else's to use. None, or more than one, is an
 * operator's matter, and the error says what to do or which entries compete.
 */
import type { SpiffeId } from '../../spiffe/id'
import type { AuthorizedEntry } from './authorized-entries'
import { UpstreamError } from './errors'

/** The device's downstream entry among `entries`, authorized to `agentId`. */
export function chooseDownstreamEntry (entries: readonly AuthorizedEntry[], agentId: SpiffeId): AuthorizedEntry {
  const agent = agentId.toString()
  const entryIds = new Set(entries.map(entry => entry.spiffeId))
  const own = entries.filter(entry => entry.parentId === agent || !entryIds.has(entry.parentId))
  const downstream = own.filter(entry => entry.downstream)
  if (downstream.length === 1) return downstream[0]
  if (downstream.length > 1) {
    throw new UpstreamError('ERR_DOWNSTREAM_ENTRY_AMBIGUOUS',
      `${downstream.length} downstream entries are authorized to agent ${agent}, one is needed: ${downstream.map(describe).join(', ')}; delete all but the device's`)
  }
  const others = own.length === 0 ? '' : ` (authorized without -downstream: ${own.map(describe).join(', ')})`
  throw new UpstreamError('ERR_DOWNSTREAM_ENTRY_MISSING',
    `no downstream entry is authorized to agent ${agent}${others}; register the device: spire-server entry create ` +
    `-parentID ${agent} -spiffeID spiffe://${agentId.trustDomain.name}/<the device's path> -selector <type:value> -downstream`)
}

function describe (entry: AuthorizedEntry): string {
  return `${entry.spiffeId} (entry ${entry.id}, parent ${entry.parentId})`
}
