/**
 * SPIRE's server Entry service (spire.api.server.entry.v1.Entry) over our registration store: Count, List and Get
 * read it, the Batch calls change it one item at a time (entry-writes.ts), each change logged with its caller. The
 * calls only SPIRE agents make (GetAuthorizedEntries, SyncAuthorizedEntries) answer UNIMPLEMENTED: this agent
 * serves its entries itself.
 */
import { status } from '@grpc/grpc-js'
import type { ServerDuplexStream, ServerUnaryCall, UntypedServiceImplementation, sendUnaryData } from '@grpc/grpc-js'
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

export interface EntryServiceDeps extends EntryWriteDeps {
  readonly callers: CallerRegistry
}

const SERVICE = 'spire.api.server.entry.v1.Entry'

type Unary<Req, Res> = (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void

export function entryHandlers (deps: EntryServiceDeps): UntypedServiceImplementation {
  const { store, ctx, logger } = deps
  /** Answers with `work`'s result, or its SpireApiError as the call's status (anything else: INTERNAL, logged). */
  const unary = <Req, Res>(method: string, work: (request: Req, call: ServerUnaryCall<Req, Res>) => Res): Unary<Req, Res> => (call, callback) => {
    try {
      callback(null, work(call.request, call))
    } catch (err) {
      if (err instanceof SpireApiError) {
        logger.info({ method, code: status[err.grpcCode], reason: err.message }, 'SPIRE server API: request refused')
        callback(err.toServiceError())
        return
      }
      logger.error({ err, method }, 'SPIRE server API: request failed')
      callback(new SpireApiError(status.INTERNAL, `${method} failed; see the agent's log`).toServiceError())
    }
  }
  /** Logs a batch's changes: which method, which entries with which outcome, and who asked. */
  const logChanges = (method: string, call: ServerUnaryCall<unknown, unknown>, results: Array<{ id: string, code: number }>): void => {
    logger.info({ method, caller: deps.callers.of(call.getPeer()), entries: results.map(r => ({ id: r.id, code: status[r.code] })) },
      `SPIRE server API: ${method}`)
  }
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
  return new SpireApiError(status.UNIMPLEMENTED, `/${SERVICE}/${method} is not implemented: it is for SPIRE agents, and this agent serves its own entries`)
}
