/**
 * A selector match of SPIRE's filters (by_selectors of entries, by_selector_match of agents) as its SQL datastore
 * applies it, in two passes: the first picks what shares the selectors given (EXACT and SUPERSET: has every one;
 * SUBSET and ANY: at least one), so nothing without selectors matches; the second (EXACT and SUBSET) keeps only what
 * has no selector beyond those given. SPIRE cuts its pages after the first pass and applies the second to each page.
 */
import type { MatchBehavior } from './messages'

interface SelectorLike {
  readonly type: string
  readonly value: string
}

export interface SelectorQuery {
  /** The first pass. */
  readonly matches: (selectors: readonly SelectorLike[]) => boolean
  /** The second pass (always true for SUPERSET and ANY). */
  readonly keeps: (selectors: readonly SelectorLike[]) => boolean
}

const MATCHES = new Set<MatchBehavior>(['MATCH_EXACT', 'MATCH_SUBSET', 'MATCH_SUPERSET', 'MATCH_ANY'])

/** Whether `match` is one of SPIRE's four behaviours (an unknown enum number comes as a number). */
export function isMatchBehavior (match: MatchBehavior): boolean {
  return MATCHES.has(match)
}

/** The two passes for the (checked, non-empty) selectors `given` and a known match behaviour. */
export function selectorMatch (given: readonly SelectorLike[], match: MatchBehavior): SelectorQuery {
  const keys = new Set(given.map(key))
  const shared = (selectors: readonly SelectorLike[]): number => selectors.filter(s => keys.has(key(s))).length
  const all = match === 'MATCH_EXACT' || match === 'MATCH_SUPERSET'
  const within = match === 'MATCH_EXACT' || match === 'MATCH_SUBSET'
  return {
    matches: all ? selectors => shared(selectors) === keys.size : selectors => shared(selectors) > 0,
    keeps: within ? selectors => selectors.every(s => keys.has(key(s))) : () => true
  }
}

function key (selector: SelectorLike): string {
  return `${selector.type}:${selector.value}`
}
