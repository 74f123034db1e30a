/**
 * ListEntries' and CountEntries' filter, as SPIRE's server reads and applies it (entry/v1/service.go, then its SQL
 * datastore): every field given must hold. It is applied in two passes, because SPIRE's paging depends on it: the
 * first decides which entries a page is cut from; the second, only for selector matches EXACT and SUBSET, drops
 * entries from a page already cut (SPIRE's SQL finds the entries that share the selectors, then filters in Go).
 */
import type { RegistrationEntry } from '../store'
import { SpireApiError } from './api-error'
import { checkSelector } from './entry-mapping'
import type { EntryContext } from './entry-mapping'
import type { EntryFilterMessage, MatchBehavior } from './messages'
import { isMatchBehavior, selectorMatch } from './selector-match'
import { memberIdFromProto, trustDomainName, workloadIdFromProto } from './spire-id'

export interface EntryQuery {
  /** The first pass: the entries pages are cut from. */
  readonly matches: (entry: RegistrationEntry) => boolean
  /** The second pass, over a page. */
  readonly keeps: (entry: RegistrationEntry) => boolean
}

type Test = (entry: RegistrationEntry) => boolean
const ALWAYS: Test = () => true

/** The filter's two passes; throws SpireApiError (INVALID_ARGUMENT) with SPIRE's message for a malformed filter. */
export function entryQuery (filter: EntryFilterMessage | null, ctx: EntryContext): EntryQuery {
  if (filter === null) return { matches: ALWAYS, keeps: ALWAYS }
  const tests: Test[] = []
  // In SPIRE's order, so the first problem reported is SPIRE's.
  const hint = filter.by_hint?.value ?? ''
  if (hint !== '') tests.push(entry => entry.hint === hint)
  if (filter.by_parent_id !== null) {
    const parentId = SpireApiError.within('malformed parent ID filter', () => memberIdFromProto(ctx.trustDomain, filter.by_parent_id))
    tests.push(entry => (entry.parentId ?? ctx.agentId) === parentId)
  }
  if (filter.by_spiffe_id !== null) {
    const spiffeId = SpireApiError.within('malformed SPIFFE ID filter', () => workloadIdFromProto(ctx.trustDomain, filter.by_spiffe_id))
    tests.push(entry => entry.spiffeId === spiffeId)
  }
  let keeps = ALWAYS
  if (filter.by_selectors !== null) {
    const { match } = filter.by_selectors
    const selectors = SpireApiError.within('malformed selectors filter', () => filter.by_selectors?.selectors.map(checkSelector) ?? [])
    if (selectors.length === 0) throw SpireApiError.invalid('malformed selectors filter: empty selector set')
    knownMatch('selectors', match)
    const query = selectorMatch(selectors, match)
    tests.push(entry => query.matches(entry.selectors))
    keeps = entry => query.keeps(entry.selectors)
  }
  if (filter.by_federates_with !== null) {
    const { match } = filter.by_federates_with
    const given = new Set(filter.by_federates_with.trust_domains.map(td => SpireApiError.within('malformed federates with filter', () => trustDomainName(td))))
    if (given.size === 0) throw SpireApiError.invalid('malformed federates with filter: empty trust domain set')
    knownMatch('federates with', match)
    tests.push(federatesWith(given, match))
  }
  if (filter.by_downstream?.value === true) tests.push(entry => entry.downstream)
  return { matches: entry => tests.every(test => test(entry)), keeps }
}

/**
 * SPIRE's federates-with match: only entries that federate with some trust domain can match; EXACT: the same set;
 * SUBSET: all of the entry's among those given; SUPERSET: all given among the entry's; ANY: one in common.
 */
function federatesWith (given: ReadonlySet<string>, match: MatchBehavior): Test {
  return entry => {
    const common = entry.federatesWith.filter(td => given.has(td)).length
    const all = entry.federatesWith.length
    switch (match) {
      case 'MATCH_EXACT': return all > 0 && common === all && common === given.size
      case 'MATCH_SUBSET': return all > 0 && common === all
      case 'MATCH_SUPERSET': return common === given.size
      default: return common > 0
    }
  }
}

function knownMatch (what: string, match: MatchBehavior): void {
  if (!isMatchBehavior(match)) throw SpireApiError.invalid(`malformed ${what} filter: unknown match behavior ${String(match)}`)
}
