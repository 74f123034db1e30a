/**
 * SPIRE's server Entry service (spire.api.server.entry.v1.Entry) over our registration store: Count, List and Get
 * read it, the Batch calls change it one item at a time (entry-writes.ts), each change logged with its caller. The
 * calls only SPIRE agents make (GetAuthorizedEntries, SyncAuthorizedEntries) answer UNIMPLEMENTED: this agent
 * serves its entries itself.
 */
import { status } from '@grpc/grpc-js'
import type { ServerDuplexStream, ServerUnaryCall, UntypedServiceImplementation } from '@grpc/grpc-js'
import { SpireApiError } from './api-error'
import type { CallerRegistry } from './callers'
import { entryQuery } from './entry-filter'
import { entryToMessage, maskEntry } from './entry-mapping'
import { entryCount, entryPage } from './entry-paging'
import { createEntry, deleteEntry, updateEntry } from './entry-writes'
import type { EntryWriteDeps } from './entry-writes'
import type {
  BatchCreateEntryRequest, BatchDeleteEntryRequest, BatchUpdateEntryRequest, DeleteResult, EntryFilterMessage, EntryResult,
  GetEntryRequest, ListEntriesRequest
} from './messages'
import { serviceCalls, unimplemented } from './service-calls'
import type { ChangedItem } from './service-calls'

export interface EntryServiceDeps extends EntryWriteDeps {
  readonly callers: CallerRegistry
}

const SERVICE = 'spire.api.server.entry.v1.Entry'

export function entryHandlers (deps: EntryServiceDeps): UntypedServiceImplementation {
  const { store, ctx, logger } = deps
  const { unary, logChanges: logged } = serviceCalls(logger, deps.callers)
  const logChanges = (method: string, call: ServerUnaryCall<unknown, unknown>, results: ChangedItem[]): void => { logged(method, call, 'entries', results) }
  const count = (filter: EntryFilterMessage | null): number => entryCount(store.entriesInCreationOrder(), entryQuery(filter, ctx))

  return {
    CountEntries: unary('CountEntries', (request: { filter: EntryFilterMessage | null }) => ({ count: count(request.filter) })),
    ListEntries: unary('ListEntries', (request: ListEntriesRequest) => {
      const page = entryPage(store.entriesInCreationOrder(), entryQuery(request.filter, ctx), request.page_size, request.page_token)
      return { entries: page.entries.map(entry => maskEntry(entryToMessage(entry, ctx), request.output_mask)), next_page_token: page.nextPageToken }
    }),
    GetEntry: unary('GetEntry', (request: GetEntryRequest) => {
      if (request.id === '') throw SpireApiError.invalid('missing ID')
      const entry = store.getEntry(request.id)
      if (entry === undefined) throw new SpireApiError(status.NOT_FOUND, 'entry not found')
      return maskEntry(entryToMessage(entry, ctx), request.output_mask)
    }),
    BatchCreateEntry: unary('BatchCreateEntry', (request: BatchCreateEntryRequest, call) => {
      const results: EntryResult[] = request.entries.map(entry => createEntry(deps, entry, request.output_mask))
      logChanges('BatchCreateEntry', call, results.map((r, i) => ({ id: r.entry?.id ?? request.entries[i].id, code: r.status.code })))
      return { results }
    }),
    BatchUpdateEntry: unary('BatchUpdateEntry', (request: BatchUpdateEntryRequest, call) => {
      const results: EntryResult[] = request.entries.map(entry => updateEntry(deps, entry, request.input_mask, request.output_mask))
      logChanges('BatchUpdateEntry', call, results.map((r, i) => ({ id: request.entries[i].id, code: r.status.code })))
      return { results }
    }),
    BatchDeleteEntry: unary('BatchDeleteEntry', (request: BatchDeleteEntryRequest, call) => {
      const results: DeleteResult[] = request.ids.map(id => deleteEntry(deps, id))
      logChanges('BatchDeleteEntry', call, results.map(r => ({ id: r.id, code: r.status.code })))
      return { results }
    }),
    GetAuthorizedEntries: unary('GetAuthorizedEntries', () => { throw agentOnly('GetAuthorizedEntries') }),
    // grpc-js ends a stream with the status of the error emitted on it.
    SyncAuthorizedEntries: (call: ServerDuplexStream<unknown, unknown>) => { call.emit('error', agentOnly('SyncAuthorizedEntries').toServiceError()) }
  }
}

function agentOnly (method: string): SpireApiError {
  return unimplemented(SERVICE, method, 'it is for SPIRE agents, and this agent serves its own entries')
}
