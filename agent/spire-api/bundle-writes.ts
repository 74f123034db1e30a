/**
 * Creating, updating, setting and deleting one federated bundle as SPIRE's server does it for one item of a batch
 * (bundle/v1/service.go, then its SQL datastore): every failure becomes that item's Status, never the call's, with
 * SPIRE's code and words. Our store is stricter in one way: a bundle with no X.509 authority and no JWT key trusts
 * nothing, and is refused (INVALID_ARGUMENT, "failed to convert bundle: …") where SPIRE would store it.
 */
import { status } from '@grpc/grpc-js'
import type { Logger } from 'pino'
import { ChaperoneError } from '../../spiffe/errors'
import type { FederatedBundle, RegistrationStore } from '../store'
import { OK_STATUS, SpireApiError } from './api-error'
import { bundleToMessage, maskBundle, mergeBundle, messageToDocument } from './bundle-mapping'
import type { EntryContext } from './entry-mapping'
import type { BundleDeleteMode, BundleDeleteResult, BundleMaskMessage, BundleMessage, BundleResult } from './messages'
import { trustDomainName } from './spire-id'

export interface BundleWriteDeps {
  readonly store: RegistrationStore
  readonly ctx: EntryContext
  readonly logger: Logger
}

export function createFederatedBundle (deps: BundleWriteDeps, message: BundleMessage | null, outputMask: BundleMaskMessage | null): BundleResult {
  return attempt(deps, 'unable to create bundle', () => {
    const name = federatedName(deps, message, 'creating a federated bundle for the server\'s own trust domain is not allowed')
    const document = convertedBundle(() => messageToDocument(message as BundleMessage))
    if (deps.store.findFederatedBundle(name) !== undefined) throw new SpireApiError(status.ALREADY_EXISTS, 'bundle already exists')
    return stored(deps, name, document, outputMask)
  })
}

export function updateFederatedBundle (deps: BundleWriteDeps, message: BundleMessage | null, inputMask: BundleMaskMessage | null, outputMask: BundleMaskMessage | null): BundleResult {
  return attempt(deps, 'failed to update bundle', () => {
    const name = federatedName(deps, message, 'updating a federated bundle for the server\'s own trust domain is not allowed')
    convertedBundle(() => messageToDocument(message as BundleMessage))
    const current = deps.store.findFederatedBundle(name)
    if (current === undefined) throw new SpireApiError(status.NOT_FOUND, 'bundle not found')
    const merged = mergeBundle(message as BundleMessage, inputMask, bundleToMessage(current.bundle))
    return stored(deps, name, convertedBundle(() => messageToDocument(merged)), outputMask)
  })
}

export function setFederatedBundle (deps: BundleWriteDeps, message: BundleMessage | null, outputMask: BundleMaskMessage | null): BundleResult {
  return attempt(deps, 'failed to set bundle', () => {
    const name = federatedName(deps, message, 'setting a federated bundle for the server\'s own trust domain is not allowed')
    return stored(deps, name, convertedBundle(() => messageToDocument(message as BundleMessage)), outputMask)
  })
}

/**
 * Deletes a trust domain's bundle; the entries that federate with it, by `mode`: RESTRICT refuses while there are
 * any, DELETE deletes them, DISSOCIATE drops the trust domain from them.
 */
export function deleteFederatedBundle (deps: BundleWriteDeps, trustDomain: string, mode: BundleDeleteMode): BundleDeleteResult {
  const { status: result } = attempt(deps, 'failed to delete federated bundle', () => {
    const name = SpireApiError.within('trust domain argument is not valid', () => trustDomainName(trustDomain))
    if (name === deps.ctx.trustDomain) throw SpireApiError.invalid('removing the bundle for the server trust domain is not allowed')
    if (deps.store.findFederatedBundle(name) === undefined) throw new SpireApiError(status.NOT_FOUND, 'bundle not found')
    const federating = deps.store.listEntries().filter(entry => entry.federatesWith.includes(name))
    if (federating.length > 0 && mode === 'RESTRICT') {
      throw new SpireApiError(status.FAILED_PRECONDITION,
        `failed to delete federated bundle: datastore-sql: cannot delete bundle; federated with ${federating.length} registration entries`)
    }
    for (const entry of federating) {
      if (mode === 'DELETE') deps.store.deleteEntry(entry.id)
      else deps.store.updateEntry(entry.id, { federatesWith: entry.federatesWith.filter(td => td !== name) })
    }
    deps.store.deleteFederatedBundle(name)
    return { status: { ...OK_STATUS } }
  })
  return { status: result, trust_domain: trustDomain }
}

/** The trust domain a bundle is for, if it may be a federated one. */
function federatedName (deps: BundleWriteDeps, message: BundleMessage | null, ownRefusal: string): string {
  const name = SpireApiError.within('trust domain argument is not valid', () => trustDomainName(message?.trust_domain ?? ''))
  if (name === deps.ctx.trustDomain) throw SpireApiError.invalid(ownRefusal)
  return name
}

function stored (deps: BundleWriteDeps, name: string, document: string, outputMask: BundleMaskMessage | null): BundleResult {
  const held: FederatedBundle = convertedBundle(() => deps.store.setFederatedBundle({ trustDomain: name, format: 'spiffe', bundle: document }))
  return { status: { ...OK_STATUS }, bundle: maskBundle(bundleToMessage(held.bundle), outputMask) }
}

/**
 * SPIRE's conversion failures of a bundle sent to the API, "<prefix>: <reason>" (INVALID_ARGUMENT; SPIRE's prefix
 * for the Bundle service unless given); our store's refusals of a bundle (ERR_BUNDLE_INVALID) are among them.
 */
export function convertedBundle<T> (read: () => T, prefix = 'failed to convert bundle'): T {
  try {
    return SpireApiError.within(prefix, read)
  } catch (err) {
    if (err instanceof ChaperoneError && (err as ChaperoneError).code === 'ERR_BUNDLE_INVALID') throw SpireApiError.invalid(`${prefix}: ${err.message}`)
    throw err
  }
}

/** Runs one item's work; any failure becomes its Status (an unexpected one: INTERNAL with `failing`, logged). */
function attempt (deps: BundleWriteDeps, failing: string, work: () => BundleResult): BundleResult {
  try {
    return work()
  } catch (err) {
    if (err instanceof SpireApiError) return { status: err.toStatus() }
    deps.logger.error({ err }, `SPIRE server API: ${failing}`)
    return { status: new SpireApiError(status.INTERNAL, failing).toStatus() }
  }
}
