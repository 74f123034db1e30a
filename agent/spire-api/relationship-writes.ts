/**
 * Creating, updating and deleting one federation relationship as SPIRE's server does it for one item of a batch
 * (trustdomain/v1/service.go, then its SQL datastore): every failure becomes that item's Status, never the call's,
 * with SPIRE's code and words. A relationship defined in the agent's config file is changed there only: an update
 * or a delete of one is refused FAILED_PRECONDITION, saying so. Where SPIRE and our store differ: a bundle sent is
 * refused when it trusts nothing (bundle-writes.ts), and deleting a relationship deletes the trust domain's bundle
 * too (SPIFFE Federation §6.3; SPIRE keeps it).
 */
import { status } from '@grpc/grpc-js'
import { RelationshipError } from '../store'
import type { FederationRelationship, RelationshipErrorCode } from '../store'
import { OK_STATUS, SpireApiError } from './api-error'
import { convertedBundle } from './bundle-writes'
import type { BundleWriteDeps } from './bundle-writes'
import type { FederationRelationshipDeleteResult, FederationRelationshipMaskMessage as Mask, FederationRelationshipMessage, FederationRelationshipResult, StatusMessage } from './messages'
import { messageToRelationship, relationshipPatch, relationshipToMessage } from './relationship-mapping'
import { trustDomainName } from './spire-id'

export type RelationshipWriteDeps = BundleWriteDeps

type Operation = 'create' | 'update' | 'delete'

/** Our store's refusals, per operation, as SPIRE answers the same case (its datastore's words where it has them). */
const REFUSALS: Readonly<Record<Operation, Partial<Record<RelationshipErrorCode, (err: RelationshipError) => SpireApiError>>>> = {
  create: {
    ERR_RELATIONSHIP_EXISTS: () => new SpireApiError(status.INTERNAL,
      'failed to create federation relationship: datastore-sql: UNIQUE constraint failed: federated_trust_domains.trust_domain')
  },
  update: {
    ERR_RELATIONSHIP_NOT_FOUND: () => new SpireApiError(status.INTERNAL, 'failed to update federation relationship: unable to fetch federation relationship: record not found'),
    ERR_RELATIONSHIP_FROM_CONFIG: err => SpireApiError.of(status.FAILED_PRECONDITION, 'failed to update federation relationship', err)
  },
  delete: {
    ERR_RELATIONSHIP_NOT_FOUND: () => new SpireApiError(status.NOT_FOUND, 'federation relationship not found'),
    ERR_RELATIONSHIP_FROM_CONFIG: err => SpireApiError.of(status.FAILED_PRECONDITION, 'failed to delete federation relationship', err)
  }
}

/** The store's own failures of a bundle sent with a relationship (it trusts nothing), in SPIRE's conversion words. */
const BUNDLE_REFUSED = 'failed to convert federation relationship: failed to parse bundle'

export function createRelationship (deps: RelationshipWriteDeps, message: FederationRelationshipMessage | null, outputMask: Mask | null): FederationRelationshipResult {
  return attempt(deps, 'create', () => {
    const { input, bundle } = messageToRelationship(message)
    if (input.trustDomain === deps.ctx.trustDomain) throw SpireApiError.invalid('unable to create federation relationship for server trust domain')
    const created = convertedBundle(() => deps.store.relationships.create(input, { source: 'api', ...bundle === undefined ? {} : { bundle } }), BUNDLE_REFUSED)
    // As SPIRE's: the bundle is shown when one was sent.
    return shown(deps, created, bundle !== undefined, outputMask)
  })
}

export function updateRelationship (deps: RelationshipWriteDeps, message: FederationRelationshipMessage | null, inputMask: Mask | null, outputMask: Mask | null): FederationRelationshipResult {
  return attempt(deps, 'update', () => {
    const relationship = messageToRelationship(message)
    const { patch, bundle } = relationshipPatch(relationship, inputMask)
    const updated = convertedBundle(() => deps.store.relationships.update(relationship.input.trustDomain, patch, bundle === undefined ? {} : { bundle }), BUNDLE_REFUSED)
    return shown(deps, updated, true, outputMask)
  })
}

export function deleteRelationship (deps: RelationshipWriteDeps, trustDomain: string): FederationRelationshipDeleteResult {
  let name = trustDomain
  const { status: result } = attempt(deps, 'delete', () => {
    if (trustDomain === '') throw SpireApiError.invalid('missing trust domain')
    name = SpireApiError.within('failed to parse trust domain', () => trustDomainName(trustDomain))
    deps.store.relationships.delete(name)
    return { status: { ...OK_STATUS } }
  })
  return { status: result, trust_domain: name }
}

/** A relationship as a batch answers it: with the bundle held for its trust domain when `withBundle`. */
function shown (deps: RelationshipWriteDeps, relationship: FederationRelationship, withBundle: boolean, mask: Mask | null): FederationRelationshipResult {
  const bundle = withBundle ? deps.store.findFederatedBundle(relationship.trustDomain.name)?.bundle : undefined
  return { status: { ...OK_STATUS }, federation_relationship: relationshipToMessage(relationship, bundle, mask) }
}

/** Runs one item's work; any failure becomes its Status (an unexpected one: INTERNAL, logged). */
function attempt<R extends { status: StatusMessage }> (deps: RelationshipWriteDeps, operation: Operation, work: () => R): R | { status: StatusMessage } {
  try {
    return work()
  } catch (err) {
    if (err instanceof SpireApiError) return { status: err.toStatus() }
    if (err instanceof RelationshipError) {
      const refusal = REFUSALS[operation][err.code] ?? (() => SpireApiError.of(status.INVALID_ARGUMENT, 'failed to convert federation relationship', err))
      return { status: refusal(err).toStatus() }
    }
    deps.logger.error({ err, operation }, `SPIRE server API: failed to ${operation} a federation relationship`)
    return { status: new SpireApiError(status.INTERNAL, `failed to ${operation} federation relationship`).toStatus() }
  }
}
