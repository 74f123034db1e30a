/**
 * The admin API's calls on federation relationships (`chaperone federation …`): create, update, delete, show, list
 * and refresh, over the store's relationships and the agent's fetchers; each change logged. Relationships from the
 * config file are shown but changed only there (ERR_RELATIONSHIP_FROM_CONFIG).
 */
import type { Logger } from 'pino'
import type { Federation } from '../federation/federation'
import type { BootstrapBundle, FederatedBundleFormat, RegistrationStore } from '../store'
import { relationshipToMessage } from './federation-message'
import type { CreateRelationshipMessage, RelationshipMessage } from './federation-message'

export interface FederationCalls {
  readonly create: (request: CreateRelationshipMessage) => RelationshipMessage
  readonly update: (request: CreateRelationshipMessage) => RelationshipMessage
  readonly delete: (request: { trust_domain: string }) => RelationshipMessage
  readonly get: (request: { trust_domain: string }) => RelationshipMessage
  readonly list: () => { relationships: RelationshipMessage[] }
  readonly refresh: (request: { trust_domain: string }) => Promise<RelationshipMessage>
}

const bootstrap = (request: CreateRelationshipMessage): BootstrapBundle | undefined =>
  request.bundle === '' ? undefined : { format: (request.bundle_format === '' ? 'spiffe' : request.bundle_format) as FederatedBundleFormat, bundle: request.bundle }
const given = (value: string): string | undefined => value === '' ? undefined : value

export function federationCalls (store: RegistrationStore, federation: Federation, logger: Logger): FederationCalls {
  const shown = (trustDomain: string): RelationshipMessage => relationshipToMessage(federation.statusOf(trustDomain))
  return {
    create: request => {
      const bundle = bootstrap(request)
      const created = store.relationships.create({
        trustDomain: request.trust_domain,
        bundleEndpointUrl: request.bundle_endpoint_url,
        profile: request.profile,
        ...(given(request.endpoint_spiffe_id) === undefined ? {} : { endpointSpiffeId: request.endpoint_spiffe_id })
      }, bundle === undefined ? {} : { bundle })
      logger.info({ trustDomain: created.trustDomain.name, url: created.bundleEndpointUrl, profile: created.profile.kind, bootstrapBundle: bundle !== undefined },
        'admin: federation relationship created')
      return shown(created.trustDomain.name)
    },
    update: request => {
      const bundle = bootstrap(request)
      const updated = store.relationships.update(request.trust_domain, {
        ...(given(request.bundle_endpoint_url) === undefined ? {} : { bundleEndpointUrl: request.bundle_endpoint_url }),
        ...(given(request.profile) === undefined ? {} : { profile: request.profile }),
        ...(given(request.endpoint_spiffe_id) === undefined ? {} : { endpointSpiffeId: request.endpoint_spiffe_id })
      }, bundle === undefined ? {} : { bundle })
      logger.info({ trustDomain: updated.trustDomain.name, url: updated.bundleEndpointUrl, profile: updated.profile.kind, bundleSet: bundle !== undefined },
        'admin: federation relationship updated')
      return shown(updated.trustDomain.name)
    },
    delete: request => {
      const status = federation.statusOf(request.trust_domain)
      const { bundle } = store.relationships.delete(request.trust_domain)
      logger.info({ trustDomain: status.relationship.trustDomain.name, bundleDeleted: bundle !== undefined }, 'admin: federation relationship deleted, with its bundle')
      return relationshipToMessage(status)
    },
    get: request => shown(request.trust_domain),
    list: () => ({ relationships: federation.status().map(relationshipToMessage) }),
    refresh: async request => {
      await federation.refresh(request.trust_domain)
      logger.info({ trustDomain: request.trust_domain }, 'admin: federation bundle refreshed')
      return shown(request.trust_domain)
    }
  }
}
