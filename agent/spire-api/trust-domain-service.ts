/**
 * SPIRE's server TrustDomain service (spire.api.server.trustdomain.v1.TrustDomain), over the registration store's
 * federation relationships, so that `spire-server federation create|list|show|update|delete|refresh` work against
 * the agent: List (with SPIRE's paging and output mask), Get, and the Batch calls, one item at a time in
 * relationship-writes.ts, each change logged with its caller. Unlike SPIRE's, which leaves out its static
 * relationships, the relationships of the agent's config file are listed and shown too (they are the agent's
 * relationships as much as the others), and refused to updates and deletes. A relationship's trust_domain_bundle
 * is the bundle held for its trust domain, as the Bundle service shows it. RefreshBundle fetches a trust domain's
 * bundle at once, through the agent's federation (`refresh`), and answers when the fetch is done.
 */
import { status } from '@grpc/grpc-js'
import type { ServerUnaryCall, UntypedServiceImplementation } from '@grpc/grpc-js'
import { SpireApiError } from './api-error'
import type { CallerRegistry } from './callers'
import { keyedPage } from './keyed-paging'
import type { FederationRelationshipMaskMessage as Mask, FederationRelationshipMessage, StatusMessage } from './messages'
import { relationshipToMessage } from './relationship-mapping'
import { createRelationship, deleteRelationship, updateRelationship } from './relationship-writes'
import type { RelationshipWriteDeps } from './relationship-writes'
import { serviceCalls, unimplemented } from './service-calls'
import { trustDomainName } from './spire-id'

/** The agent's federation: fetches a trust domain's bundle from its endpoint now; rejects with the reason it could not. */
export interface BundleRefresher {
  refresh: (trustDomain: string) => Promise<void>
}

export interface TrustDomainServiceDeps extends RelationshipWriteDeps {
  readonly callers: CallerRegistry
  /** Without one (the agent fetches no bundles), RefreshBundle answers UNIMPLEMENTED. */
  readonly federation?: BundleRefresher
}

const SERVICE = 'spire.api.server.trustdomain.v1.TrustDomain'

interface ListRequest { output_mask: Mask | null, page_size: number, page_token: string }
interface BatchRequest { federation_relationships: FederationRelationshipMessage[], input_mask?: Mask | null, output_mask: Mask | null }

export function trustDomainHandlers (deps: TrustDomainServiceDeps): UntypedServiceImplementation {
  const { store } = deps
  const { unary, unaryAsync, logChanges } = serviceCalls(deps.logger, deps.callers)
  const shown = (name: string, mask: Mask | null): FederationRelationshipMessage | undefined => {
    const relationship = store.relationships.find(name)
    return relationship === undefined ? undefined : relationshipToMessage(relationship, store.findFederatedBundle(name)?.bundle, mask)
  }
  const requested = (trustDomain: string): string => SpireApiError.within('failed to parse trust domain', () => trustDomainName(trustDomain))
  /** A batch's results, each change logged under the trust domain it names. */
  const logged = <R extends { status: StatusMessage }>(method: string, call: ServerUnaryCall<unknown, unknown>, names: string[], results: R[]): { results: R[] } => {
    logChanges(method, call, 'relationships', results.map((result, i) => ({ id: names[i], code: result.status.code })))
    return { results }
  }
  const names = (request: BatchRequest): string[] => request.federation_relationships.map(relationship => relationship.trust_domain)

  return {
    ListFederationRelationships: unary('ListFederationRelationships', (request: ListRequest) => {
      const page = keyedPage(store.relationships.list().map(r => r.trustDomain.name), request.page_size, request.page_token, {
        keyOf: name => name,
        follows: (name, token) => name > token
      })
      return {
        federation_relationships: page.items.flatMap(name => shown(name, request.output_mask) ?? []),
        next_page_token: page.nextPageToken
      }
    }),
    GetFederationRelationship: unary('GetFederationRelationship', (request: { trust_domain: string, output_mask: Mask | null }) =>
      shown(requested(request.trust_domain), request.output_mask) ?? notFound()),
    BatchCreateFederationRelationship: unary('BatchCreateFederationRelationship', (request: BatchRequest, call) =>
      logged('BatchCreateFederationRelationship', call, names(request),
        request.federation_relationships.map(relationship => createRelationship(deps, relationship, request.output_mask)))),
    BatchUpdateFederationRelationship: unary('BatchUpdateFederationRelationship', (request: BatchRequest, call) =>
      logged('BatchUpdateFederationRelationship', call, names(request),
        request.federation_relationships.map(relationship => updateRelationship(deps, relationship, request.input_mask ?? null, request.output_mask)))),
    BatchDeleteFederationRelationship: unary('BatchDeleteFederationRelationship', (request: { trust_domains: string[] }, call) =>
      logged('BatchDeleteFederationRelationship', call, request.trust_domains, request.trust_domains.map(trustDomain => deleteRelationship(deps, trustDomain)))),
    RefreshBundle: unaryAsync('RefreshBundle', async (request: { trust_domain: string }) => {
      const name = requested(request.trust_domain)
      if (store.relationships.find(name) === undefined) throw new SpireApiError(status.NOT_FOUND, `no relationship with trust domain ${JSON.stringify(name)}`)
      if (deps.federation === undefined) throw unimplemented(SERVICE, 'RefreshBundle', 'this agent fetches no federated bundles')
      try {
        await deps.federation.refresh(name)
      } catch (err) {
        // SPIRE's words, then the fetch's reason ("failed to refresh bundle: …").
        throw SpireApiError.of(status.INTERNAL, 'failed to refresh bundle', err instanceof Error ? err : new Error(String(err)))
      }
      deps.logger.info({ trustDomain: name }, 'SPIRE server API: bundle refreshed')
      return {}
    })
  }
}

function notFound (): never {
  throw new SpireApiError(status.NOT_FOUND, 'federation relationship does not exist')
}
