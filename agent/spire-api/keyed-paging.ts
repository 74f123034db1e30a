/**
 * Paging by key, for lists SPIRE's SQL datastore pages by row ID (bundles, agents): page_size 0 (or less) means
 * everything at once; otherwise a page holds up to page_size items and its token is its last item's key, so a
 * non-empty page always carries a token, and the walk ends with an empty page and an empty token. Our tokens are
 * keys (a trust domain name, an agent ID), not SPIRE's row numbers: clients pass them back unread. A second pass
 * (`keeps`: agents' EXACT and SUBSET selector matches) may empty a page cut; then the next one is cut at once, as
 * SPIRE does, until one is not empty.
 */

export interface KeyedPage<T> {
  readonly items: T[]
  readonly nextPageToken: string
}

export interface Keyed<T> {
  /** The key a page ending with `item` names as its token. */
  readonly keyOf: (item: T) => string
  /** Whether `item` comes after the item whose key is `token`. */
  readonly follows: (item: T, token: string) => boolean
  /** The second pass, over a page already cut (none: every item is kept). */
  readonly keeps?: (item: T) => boolean
}

/** One page of `items` (in walk order) after `pageToken`. */
export function keyedPage<T> (items: readonly T[], pageSize: number, pageToken: string, keyed: Keyed<T>): KeyedPage<T> {
  const keeps = keyed.keeps ?? (() => true)
  if (pageSize <= 0) return { items: items.filter(keeps), nextPageToken: '' }
  let after = pageToken
  for (;;) {
    const rest = after === '' ? items : items.filter(item => keyed.follows(item, after))
    const page = rest.slice(0, pageSize)
    const last = page.at(-1)
    if (last === undefined) return { items: [], nextPageToken: '' }
    const kept = page.filter(keeps)
    if (kept.length > 0) return { items: kept, nextPageToken: keyed.keyOf(last) }
    after = keyed.keyOf(last)
  }
}
