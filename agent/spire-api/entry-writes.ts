/**
 * Creating, updating and deleting one entry as SPIRE's server does it for one item of a batch (entry/v1/service.go
 * and its SQL datastore, whose checks and words come after the API's): every failure becomes that item's Status,
 * never the call's. Where our store is stricter than SPIRE's (a TTL of at most a year; an update that would make an
 * entry like another), its reason is given with SPIRE's code for the kind of failure. Where it is more lenient: an
 * entry may federate with a trust domain whose bundle the agent does not hold yet (SPIRE refuses it, "unable to
 * find federated bundle"; users asked for this, spire#7146, #2272): the bundle is served to its workloads once it
 * arrives, set or fetched.
 */
import { dirname } from 'node:path'
import { status } from '@grpc/grpc-js'
import type { Logger } from 'pino'
import { ChaperoneError } from '../../spiffe/errors'
import type { EntryInput, RegistrationEntry, RegistrationStore } from '../store'
import { isWriteFailure, unwritableReason } from '../unwritable'
import { OK_STATUS, SpireApiError } from './api-error'
import { entryToMessage, maskEntry, messageToInput } from './entry-mapping'
import type { EntryContext } from './entry-mapping'
import type { DeleteResult, EntryMaskMessage, EntryMessage, EntryResult } from './messages'

export interface EntryWriteDeps {
  readonly store: RegistrationStore
  readonly ctx: EntryContext
  readonly logger: Logger
}

/** SPIRE's selectors are checked by its own rule, not by our attestors' forms. */
const SPIRE_SELECTORS = { selectorSyntax: 'spire' } as const
/** The checks of SPIRE's datastore (validateRegistrationEntry): what the API's conversion lets through. */
const ENTRY_ID_CHARS = /^[A-Za-z0-9._-]*$/
const MAX_ENTRY_ID_LENGTH = 255

/** Our store's reasons that are the caller's, with the code SPIRE gives that kind of failure. */
const STORE_REFUSALS: Readonly<Record<string, status>> = {
  ERR_ENTRY_INVALID: status.INVALID_ARGUMENT,
  ERR_SELECTOR_INVALID: status.INVALID_ARGUMENT,
  ERR_SPIFFE_ID_INVALID: status.INVALID_ARGUMENT,
  ERR_TRUST_DOMAIN_INVALID: status.INVALID_ARGUMENT,
  ERR_ENTRY_DUPLICATE: status.ALREADY_EXISTS,
  ERR_ENTRY_NOT_FOUND: status.NOT_FOUND
}

export function createEntry (deps: EntryWriteDeps, message: EntryMessage | null, outputMask: EntryMaskMessage | null): EntryResult {
  return attempt(deps, 'create', () => {
    const input = converted(() => messageToInput(message, deps.ctx))
    datastoreCheck('create', [...storeSvidProblems(input), ...entryIdProblems(message?.id ?? ''), ...ttlProblems(message)])
    const similar = deps.store.findSimilarEntry(input, SPIRE_SELECTORS)
    if (similar !== undefined) return { status: { code: status.ALREADY_EXISTS, message: 'similar entry already exists' }, entry: shown(deps, similar, outputMask) }
    const id = message?.id === '' ? undefined : message?.id
    return { status: { ...OK_STATUS }, entry: shown(deps, deps.store.createEntry(input, { ...SPIRE_SELECTORS, id }), outputMask) }
  })
}

export function updateEntry (deps: EntryWriteDeps, message: EntryMessage | null, inputMask: EntryMaskMessage | null, outputMask: EntryMaskMessage | null): EntryResult {
  return attempt(deps, 'update', () => {
    const current = deps.store.getEntry(message?.id ?? '')
    const input = converted(() => messageToInput(message, deps.ctx, inputMask, current))
    datastoreCheck('update', ttlProblems(message, inputMask))
    if (current === undefined) throw SpireApiError.of(status.NOT_FOUND, 'failed to update entry')
    datastoreCheck('update', storeSvidProblems(input))
    return { status: { ...OK_STATUS }, entry: shown(deps, deps.store.replaceEntry(current.id, input, SPIRE_SELECTORS), outputMask) }
  })
}

export function deleteEntry (deps: EntryWriteDeps, id: string): DeleteResult {
  const { status: result } = attempt(deps, 'delete', () => {
    if (id === '') throw SpireApiError.invalid('missing entry ID')
    if (deps.store.getEntry(id) === undefined) throw new SpireApiError(status.NOT_FOUND, 'entry not found')
    deps.store.deleteEntry(id)
    return { status: { ...OK_STATUS } }
  })
  return { status: result, id }
}

function shown (deps: EntryWriteDeps, entry: RegistrationEntry, mask: EntryMaskMessage | null): EntryMessage {
  return maskEntry(entryToMessage(entry, deps.ctx), mask)
}

/** SPIRE's conversion failures: "failed to convert entry: <reason>". */
function converted (read: () => EntryInput): EntryInput {
  return SpireApiError.within('failed to convert entry', read)
}

function datastoreCheck (operation: string, problems: string[]): void {
  if (problems.length > 0) throw SpireApiError.invalid(`failed to ${operation} entry: datastore-validation: invalid registration entry: ${problems[0]}`)
}

/** TTLs below 0 (a field left out of the input mask is not checked). */
function ttlProblems (message: EntryMessage | null, mask: EntryMaskMessage | null = null): string[] {
  return [
    ...(mask === null || mask.x509_svid_ttl) && (message?.x509_svid_ttl ?? 0) < 0 ? ['X509SvidTtl is not set'] : [],
    ...(mask === null || mask.jwt_svid_ttl) && (message?.jwt_svid_ttl ?? 0) < 0 ? ['JwtSvidTtl is not set'] : []
  ]
}

/** An SVID for an SVIDStore is selected by one platform: its selectors are all of one type. */
function storeSvidProblems (input: EntryInput): string[] {
  const types = new Set(input.selectors.map(s => typeof s === 'string' ? s.slice(0, s.indexOf(':')) : s.type))
  return input.storeSvid === true && types.size > 1 ? ['selector types must be the same when store SVID is enabled'] : []
}

function entryIdProblems (id: string): string[] {
  if (id.length > MAX_ENTRY_ID_LENGTH) return ['entry ID too long']
  return ENTRY_ID_CHARS.test(id) ? [] : ['entry ID contains invalid characters']
}

/** Runs one item's work; any failure becomes its Status. */
function attempt (deps: EntryWriteDeps, operation: string, work: () => EntryResult): EntryResult {
  try {
    return work()
  } catch (err) {
    return { status: failure(deps, operation, err).toStatus() }
  }
}

function failure (deps: EntryWriteDeps, operation: string, err: unknown): SpireApiError {
  if (err instanceof SpireApiError) return err
  const code = err instanceof ChaperoneError ? (err as ChaperoneError).code : undefined
  if (code === 'ERR_ENTRY_ID_IN_USE') {
    // What SPIRE's SQLite says about a second entry with the same ID.
    return new SpireApiError(status.ALREADY_EXISTS, `failed to ${operation} entry: datastore-sql: UNIQUE constraint failed: registered_entries.entry_id`)
  }
  const refusal = code === undefined ? undefined : STORE_REFUSALS[code]
  if (refusal !== undefined) return SpireApiError.of(refusal, `failed to ${operation} entry`, err as Error)
  const reason = isWriteFailure(err) ? unwritableReason(dirname(deps.store.path)) : undefined
  deps.logger.error({ err, operation, reason }, `SPIRE server API: failed to ${operation} an entry`)
  return new SpireApiError(reason === undefined ? status.INTERNAL : status.UNAVAILABLE, `failed to ${operation} entry${reason === undefined ? '' : `: ${reason}`}`)
}
