/**
 * The admin API's client, used by the `chaperone` CLI and by orchestrators embedding Chaperone. Failures come back
 * as ChaperoneErrors with the agent's stable code; an agent that cannot be reached is ERR_ADMIN_UNAVAILABLE.
 */
import { Metadata, credentials, status } from '@grpc/grpc-js'
import type { Client, ServiceError } from '@grpc/grpc-js'
import { ChaperoneError } from '../../spiffe/errors'
import { socketProblem } from '../../spiffe/socket-errno'
import { AgentError } from '../errors'
import { AdminService, ERROR_CODE_METADATA } from './grpc-proto'
import type { EntryMessage } from './entry-message'
import type { CaStatusMessage } from './ca-message'
import type { WorkloadApiStatusMessage } from './workload-api-message'
import type { BundleMessage } from './bundle-message'
import type { AppendedAuthoritiesMessage } from './appended-authority-message'
import type { FederatedBundleFormat } from '../store'
import type { DeviceMessage, FleetStatusMessage, ListDevicesMessage, RegisteredDeviceMessage } from './fleet-message'
import type { CreateRelationshipMessage, RelationshipMessage } from './federation-message'

export type { BundleMessage } from './bundle-message'
export type { AppendedAuthoritiesMessage, AppendedAuthorityMessage } from './appended-authority-message'
export type { DeviceMessage, FleetStatusMessage, ListDevicesMessage, RegisteredDeviceMessage } from './fleet-message'
export type { RelationshipMessage } from './federation-message'

type Callback<T> = (err: ServiceError | null, value?: T) => void
type UnaryMethod = (request: unknown, metadata: Metadata, options: { deadline: Date }, callback: Callback<unknown>) => void

export class AdminClient {
  readonly #client: Client
  readonly #socketPath: string

  constructor (socketPath: string) {
    this.#socketPath = socketPath
    const Service = AdminService()
    this.#client = new Service(`unix:${socketPath}`, credentials.createInsecure())
  }

  createEntry (entry: Partial<EntryMessage>): Promise<EntryMessage> {
    return this.#call('CreateEntry', entry)
  }

  updateEntry (entry: Partial<EntryMessage> & { id: string }, fields: string[]): Promise<EntryMessage> {
    return this.#call('UpdateEntry', { entry, fields })
  }

  deleteEntry (id: string): Promise<EntryMessage> {
    return this.#call('DeleteEntry', { id })
  }

  getEntry (id: string): Promise<EntryMessage> {
    return this.#call('GetEntry', { id })
  }

  async listEntries (filter: { spiffeId?: string, selector?: string } = {}): Promise<EntryMessage[]> {
    const response = await this.#call<{ entries: EntryMessage[] }>('ListEntries', { spiffe_id: filter.spiffeId ?? '', selector: filter.selector ?? '' })
    return response.entries
  }

  getBundle (): Promise<BundleMessage> {
    return this.#call('GetBundle', {})
  }

  /** Sets (adds or replaces) another trust domain's bundle from a document in `format`. */
  setFederatedBundle (trustDomain: string, format: FederatedBundleFormat, bundle: string): Promise<BundleMessage> {
    return this.#call('SetFederatedBundle', { trust_domain: trustDomain, format, bundle })
  }

  getFederatedBundle (trustDomain: string): Promise<BundleMessage> {
    return this.#call('GetFederatedBundle', { trust_domain: trustDomain })
  }

  async listFederatedBundles (): Promise<BundleMessage[]> {
    const response = await this.#call<{ bundles: BundleMessage[] }>('ListFederatedBundles', {})
    return response.bundles
  }

  deleteFederatedBundle (trustDomain: string): Promise<BundleMessage> {
    return this.#call('DeleteFederatedBundle', { trust_domain: trustDomain })
  }

  /** Appends the authorities of a document in `format` to our own trust domain's bundle; those it holds are not added again. */
  appendAuthorities (format: FederatedBundleFormat, bundle: string): Promise<AppendedAuthoritiesMessage> {
    return this.#call('AppendAuthorities', { format, bundle })
  }

  /** Removes an appended authority: an X.509 one by the SHA-256 fingerprint of its DER, a JWT one by its key ID. */
  removeAppendedAuthority (ref: { sha256: string } | { keyId: string }): Promise<AppendedAuthoritiesMessage> {
    return this.#call('RemoveAppendedAuthority', 'sha256' in ref ? { sha256: ref.sha256 } : { key_id: ref.keyId })
  }

  getCaStatus (): Promise<CaStatusMessage> {
    return this.#call('GetCaStatus', {})
  }

  getWorkloadApiStatus (): Promise<WorkloadApiStatusMessage> {
    return this.#call('GetWorkloadApiStatus', {})
  }

  /** Registers a fleet device by its birth certificate (PEM) or by x509pop selectors (agent with `fleet:`). */
  registerDevice (request: { spiffeId: string, selectors?: string[], birthCertPem?: string, x509SvidTtl?: number, aliasId?: string }): Promise<RegisteredDeviceMessage> {
    return this.#call('RegisterDevice', {
      spiffe_id: request.spiffeId,
      selectors: request.selectors ?? [],
      birth_cert_pem: request.birthCertPem ?? '',
      x509_svid_ttl: request.x509SvidTtl ?? 0,
      alias_id: request.aliasId ?? ''
    })
  }

  /** The devices attested to the agent (banned ones too), and the registered ones not attested yet. */
  listDevices (): Promise<ListDevicesMessage> {
    return this.#call('ListDevices', {})
  }

  /** Bans an attested device: refused until evicted (SPIRE's BanAgent). */
  banDevice (agentId: string): Promise<DeviceMessage> {
    return this.#call('BanDevice', { agent_id: agentId })
  }

  /** Evicts an attested device, which may attest again (SPIRE's DeleteAgent). */
  evictDevice (agentId: string): Promise<DeviceMessage> {
    return this.#call('EvictDevice', { agent_id: agentId })
  }

  /** The fleet's port: its address, the devices, what it refused since the agent started. */
  getFleetStatus (): Promise<FleetStatusMessage> {
    return this.#call('GetFleetStatus', {})
  }

  /** Creates a federation relationship, with a bootstrap bundle (its text and format) if given. */
  createRelationship (request: RelationshipRequest): Promise<RelationshipMessage> {
    return this.#call('CreateRelationship', relationshipRequest(request))
  }

  /** Changes a relationship's endpoint URL or profile (what is left out is kept), or sets its bundle. */
  updateRelationship (request: Partial<RelationshipRequest> & { trustDomain: string }): Promise<RelationshipMessage> {
    return this.#call('UpdateRelationship', relationshipRequest(request))
  }

  /** Deletes a relationship and its trust domain's bundle; returns what was deleted. */
  deleteRelationship (trustDomain: string): Promise<RelationshipMessage> {
    return this.#call('DeleteRelationship', { trust_domain: trustDomain })
  }

  getRelationship (trustDomain: string): Promise<RelationshipMessage> {
    return this.#call('GetRelationship', { trust_domain: trustDomain })
  }

  async listRelationships (): Promise<RelationshipMessage[]> {
    return (await this.#call<{ relationships: RelationshipMessage[] }>('ListRelationships', {})).relationships
  }

  /** Fetches a relationship's bundle now; fails with ERR_BUNDLE_FETCH_FAILED (and the reason) if the endpoint does. */
  refreshRelationship (trustDomain: string): Promise<RelationshipMessage> {
    return this.#call('RefreshRelationship', { trust_domain: trustDomain }, 40_000)
  }

  close (): void {
    this.#client.close()
  }

  #call<T> (method: string, request: unknown, deadlineMs = 10_000): Promise<T> {
    const fn = (this.#client as unknown as Record<string, UnaryMethod>)[method].bind(this.#client)
    return new Promise((resolve, reject) => {
      fn(request, new Metadata(), { deadline: new Date(Date.now() + deadlineMs) }, (err, value) => {
        if (err === null) resolve(value as T)
        else reject(this.#errorOf(err))
      })
    })
  }

  #errorOf (err: ServiceError): ChaperoneError {
    const code = err.metadata?.get(ERROR_CODE_METADATA)[0]
    if (typeof code === 'string') return new ChaperoneError(code, err.details, { cause: err })
    if (err.code === status.UNAVAILABLE || err.code === status.DEADLINE_EXCEEDED) {
      return new AgentError('ERR_ADMIN_UNAVAILABLE', `cannot reach the agent's admin API at ${this.#socketPath}: ${unreachableHint(err.details)}`, { cause: err })
    }
    return new AgentError('ERR_ADMIN_FAILED', `the agent's admin API failed: ${err.details}`, { cause: err })
  }
}

export interface RelationshipRequest {
  trustDomain: string
  bundleEndpointUrl: string
  profile: 'https_web' | 'https_spiffe'
  endpointSpiffeId?: string
  bundle?: { format: FederatedBundleFormat, text: string }
}

function relationshipRequest (request: Partial<RelationshipRequest>): CreateRelationshipMessage {
  return {
    trust_domain: request.trustDomain ?? '',
    bundle_endpoint_url: request.bundleEndpointUrl ?? '',
    profile: request.profile ?? '',
    endpoint_spiffe_id: request.endpointSpiffeId ?? '',
    bundle_format: request.bundle?.format ?? '',
    bundle: request.bundle?.text ?? ''
  }
}

const PERMISSION = 'run as the agent\'s user, or as a member of its admin socket group'

/** What an operator should check, from the errno grpc-js buries in its details. */
function unreachableHint (details: string): string {
  return socketProblem(details, {
    ENOENT: 'is the agent running, and is this its --admin-socket?',
    ECONNREFUSED: 'is the agent running?',
    EACCES: PERMISSION,
    EPERM: PERMISSION,
    ENOTSOCK: 'check --admin-socket',
    EAGAIN: 'try again'
  }) ?? `${details}; is the agent running? (--admin-socket)`
}
