/**
 * ListEntries' paging exactly as SPIRE's SQL datastore pages (listRegistrationEntries): entries in creation order;
 * page_size 0 (or less) means no paging, everything at once; otherwise a page holds up to page_size entries that
 * pass the filter's first pass, and its token is the creation rank of its last entry, so a non-empty page always
 * carries a token and the walk ends with an empty page and an empty token. The second pass (EXACT and SUBSET
 * selector matches) may empty a page; then the next one is cut at once, as SPIRE does, until one is not empty.
 */
import { status } from '@grpc/grpc-js'
import type { CreatedEntry, RegistrationEntry } from '../store'
import { SpireApiError } from './api-error'
import type { EntryQuery } from './entry-filter'

export interface EntryPage {
  readonly entries: RegistrationEntry[]
  readonly nextPageToken: string
}

/** SPIRE parses its token as a 32-bit unsigned decimal. */
const MAX_TOKEN = 2 ** 32 - 1

/** One page of `all` (every entry, in creation order) for the query, after `pageToken`. */
export function entryPage (all: readonly CreatedEntry[], query: EntryQuery, pageSize: number, pageToken: string): EntryPage {
  const matching = all.filter(({ entry }) => query.matches(entry))
  if (pageSize <= 0) return { entries: matching.map(({ entry }) => entry).filter(query.keeps), nextPageToken: '' }
  let after = tokenRank(pageToken)
  for (;;) {
    const start = matching.findIndex(({ creationOrder }) => creationOrder > after)
    const page = start === -1 ? [] : matching.slice(start, start + pageSize)
    const last = page.at(-1)
    if (last === undefined) return { entries: [], nextPageToken: '' }
    const entries = page.map(({ entry }) => entry).filter(query.keeps)
    if (entries.length > 0) return { entries, nextPageToken: String(last.creationOrder) }
    after = last.creationOrder
  }
}

/** How many entries the query finds (both passes): CountEntries. */
export function entryCount (all: readonly CreatedEntry[], query: EntryQuery): number {
  return all.filter(({ entry }) => query.matches(entry) && query.keeps(entry)).length
}

/** The rank a token names (0 before the first page); a malformed one fails as SPIRE's does, INTERNAL with its words. */
function tokenRank (token: string): number {
  if (token === '') return 0
  if (!/^[0-9]+$/.test(token) || Number(token) > MAX_TOKEN) {
    throw new SpireApiError(status.INTERNAL, `failed to list entries: datastore-sql: rpc error: code = InvalidArgument desc = could not parse token '${token}'`)
  }
  return Number(token)
}
