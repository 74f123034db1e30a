/** Federation relationships as admin.proto's Relationship message, with their fetching status and bundle. */
import type { RelationshipStatus } from '../federation/federation'

export interface RelationshipMessage {
  trust_domain: string
  bundle_endpoint_url: string
  profile: string
  endpoint_spiffe_id: string
  source: string
  created_at: number
  updated_at: number
  last_attempt_at: number
  last_success_at: number
  last_update_at: number
  next_refresh_at: number
  consecutive_failures: number
  failures: Record<string, number>
  last_error_reason: string
  last_error: string
  has_bundle: boolean
  bundle_sequence: number
  bundle_updated_at: number
  bundle_refresh_hint: number
}

export interface CreateRelationshipMessage {
  trust_domain: string
  bundle_endpoint_url: string
  profile: string
  endpoint_spiffe_id: string
  bundle_format: string
  bundle: string
}

const unix = (date: Date | undefined): number => date === undefined ? 0 : Math.floor(date.getTime() / 1000)

export function relationshipToMessage ({ relationship, fetch, bundle }: RelationshipStatus): RelationshipMessage {
  const { profile } = relationship
  return {
    trust_domain: relationship.trustDomain.name,
    bundle_endpoint_url: relationship.bundleEndpointUrl,
    profile: profile.kind,
    endpoint_spiffe_id: profile.kind === 'https_spiffe' ? profile.endpointSpiffeId.toString() : '',
    source: relationship.source,
    created_at: relationship.createdAt,
    updated_at: relationship.updatedAt,
    last_attempt_at: unix(fetch.lastAttemptAt),
    last_success_at: unix(fetch.lastSuccessAt),
    last_update_at: unix(fetch.lastUpdateAt),
    next_refresh_at: unix(fetch.nextRefreshAt),
    consecutive_failures: fetch.consecutiveFailures,
    failures: { ...fetch.failures },
    last_error_reason: fetch.lastError?.reason ?? '',
    last_error: fetch.lastError?.message ?? '',
    has_bundle: bundle !== undefined,
    bundle_sequence: bundle?.bundle.sequence ?? 0,
    bundle_updated_at: bundle?.updatedAt ?? 0,
    bundle_refresh_hint: bundle?.bundle.refreshHintSeconds ?? 0
  }
}
