/**
 * Entry/SyncAuthorizedEntries as a SPIRE server answers it (pkg/server/api/entry/v1/service.go
 * SyncAuthorizedEntries), the call a SPIRE agent syncs its entries with every 5 s: the first request carries the
 * output mask (which may not mask the revision number) and no IDs. Up to a page of entries (500, SPIRE's default)
 * goes back whole in one response, and the stream ends. More go back as pages of revisions (ID, revision, creation
 * time), `more` set on all but the last; the agent then asks, request by request, for the entries it lacks or holds
 * stale, and each request is answered with those of them still authorized, a page at a time, `more` unset on the
 * last. The stream ends when the agent closes its side.
 */
import { status } from '@grpc/grpc-js'
import type { ServerDuplexStream } from '@grpc/grpc-js'
import type { RegistrationEntry } from '../store'
import { SpireApiError } from '../spire-api/api-error'
import { entryToMessage, maskEntry } from '../spire-api/entry-mapping'
import type { EntryContext } from '../spire-api/entry-mapping'
import type { EntryMaskMessage } from '../spire-api/messages'
import { statusDetails } from '../status-details'

/** SPIRE's default entry page size (pkg/server/api/entry/v1/service.go defaultEntryPageSize). */
export const SYNC_PAGE_SIZE = 500

interface SyncRequest { output_mask: EntryMaskMessage | null, ids: string[] }
interface SyncResponse { entry_revisions: Array<{ id: string, revision_number: number, created_at: number }>, entries: object[], more: boolean }

export interface SyncAuthorizedEntriesDeps {
  /** The entries authorized to the agent calling on `peer`; throws SpireApiError when it may not call. */
  readonly entriesFor: (peer: string) => RegistrationEntry[]
  readonly ctx: EntryContext
  /** Entries per page; SYNC_PAGE_SIZE unless set (tests). */
  readonly pageSize?: number
}

export function syncAuthorizedEntries (deps: SyncAuthorizedEntriesDeps): (call: ServerDuplexStream<SyncRequest, SyncResponse>) => void {
  const pageSize = deps.pageSize ?? SYNC_PAGE_SIZE
  return call => {
    let entries: Map<string, RegistrationEntry> | undefined
    let mask: EntryMaskMessage | null = null
    let ended = false
    const end = (): void => {
      if (ended) return
      ended = true
      call.end()
    }
    const fail = (code: status, message: string): void => {
      ended = true
      call.removeAllListeners('data')
      call.emit('error', { code, details: statusDetails(message) })
    }
    const full = (entry: RegistrationEntry): object => maskEntry(entryToMessage(entry, deps.ctx), mask)
    call.on('data', (request: SyncRequest) => {
      try {
        if (entries === undefined) {
          if (request.ids.length > 0) throw new SpireApiError(status.INVALID_ARGUMENT, 'specifying IDs on initial request is not supported')
          if (request.output_mask !== null && !request.output_mask.revision_number) throw new SpireApiError(status.INVALID_ARGUMENT, 'revision number cannot be masked')
          mask = request.output_mask
          const authorized = deps.entriesFor(call.getPeer())
          if (authorized.length <= pageSize) {
            call.write({ entry_revisions: [], entries: authorized.map(full), more: false })
            end()
            return
          }
          entries = new Map(authorized.map(entry => [entry.id, entry]))
          pages(authorized, pageSize, (page, more) => {
            call.write({ entry_revisions: page.map(e => ({ id: e.id, revision_number: e.revision, created_at: e.createdAt })), entries: [], more })
          })
          return
        }
        const held = entries
        const requested = [...new Set(request.ids)].sort().flatMap(id => held.get(id) ?? [])
        pages(requested, pageSize, (page, more) => { call.write({ entry_revisions: [], entries: page.map(full), more }) })
      } catch (err) {
        if (err instanceof SpireApiError) fail(err.grpcCode, err.message)
        else fail(status.INTERNAL, `failed to sync entries: ${(err as Error).message}`)
      }
    })
    call.on('end', end)
    call.on('error', () => {
      ended = true
      call.removeAllListeners('data')
    })
  }
}

/** Calls `send` with `items` a page at a time, `more` set on all pages but the last; once, empty, for no items. */
function pages<T> (items: readonly T[], pageSize: number, send: (page: readonly T[], more: boolean) => void): void {
  if (items.length === 0) {
    send([], false)
    return
  }
  for (let start = 0; start < items.length; start += pageSize) send(items.slice(start, start + pageSize), start + pageSize < items.length)
}
