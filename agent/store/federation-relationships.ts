/**
 * The federation relationships the agent keeps (`RegistrationStore.relationships`): each change one of the store's
 * durable transactions on its change feed, which the fetchers follow. A relationship's bootstrap bundle is stored
 * as the trust domain's federated bundle before the relationship (so a fetcher never sees a relationship whose
 * bundle is still to come), and deleting a relationship deletes that bundle after it (SPIFFE Federation §6.3:
 * ending a relationship stops polling and drops the bundle). Relationships from the config file are changed only
 * by the config file (syncFromConfig, at start).
 */
import type { TrustDomain } from '../../spiffe/id'
import type { FederatedBundle, FederatedBundleFormat } from './federated-bundle'
import { RelationshipError, validateEndpointUrl, validateProfile, validateRelationship } from './federation-relationship'
import type { FederationRelationship, RelationshipChange, RelationshipInput, RelationshipPatch, RelationshipSource } from './federation-relationship'
import type { RelationshipTable } from './federation-relationship-table'
import { parseTrustDomain } from '../../spiffe/id'

export interface RelationshipsDeps {
  readonly table: RelationshipTable
  readonly trustDomain: TrustDomain
  readonly clock: () => Date
  /** Runs `write` as one store transaction and publishes the change of `kind` with the relationship it returns. */
  readonly write: (kind: RelationshipChange['kind'], write: () => FederationRelationship) => FederationRelationship
  readonly setBundle: (trustDomain: string, format: FederatedBundleFormat, bundle: string) => FederatedBundle
  readonly findBundle: (name: string) => FederatedBundle | undefined
  readonly deleteBundle: (name: string) => FederatedBundle
}

/** A bootstrap bundle: the trust domain's bundle to authenticate its endpoint until the first fetch. */
export interface BootstrapBundle {
  readonly format: FederatedBundleFormat
  readonly bundle: string
}

export interface RelationshipCreateOptions {
  readonly source?: RelationshipSource
  readonly bundle?: BootstrapBundle
}

export interface RelationshipDeleted {
  readonly relationship: FederationRelationship
  /** The trust domain's bundle, deleted with it, if one was held. */
  readonly bundle: FederatedBundle | undefined
}

export class FederationRelationships {
  readonly #deps: RelationshipsDeps

  constructor (deps: RelationshipsDeps) {
    this.#deps = deps
  }

  /**
   * Creates a relationship, with its bootstrap bundle if given (replacing a bundle held for the trust domain).
   * Throws ERR_RELATIONSHIP_INVALID, ERR_RELATIONSHIP_EXISTS, or the bundle's errors (ERR_BUNDLE_INVALID).
   */
  create (input: RelationshipInput, options: RelationshipCreateOptions = {}): FederationRelationship {
    const valid = validateRelationship(input, this.#deps.trustDomain)
    const name = valid.trustDomain.name
    if (this.#deps.table.get(name) !== undefined) {
      throw new RelationshipError('ERR_RELATIONSHIP_EXISTS', `a federation relationship with ${name} exists already (chaperone federation update changes it)`)
    }
    if (options.bundle !== undefined) this.#deps.setBundle(name, options.bundle.format, options.bundle.bundle)
    const now = this.#now()
    const relationship: FederationRelationship = Object.freeze({ ...valid, source: options.source ?? 'api', createdAt: now, updatedAt: now })
    return this.#deps.write('relationship-created', () => {
      this.#deps.table.upsert(relationship)
      return relationship
    })
  }

  /**
   * Changes a relationship's endpoint URL or profile, and sets its bundle if one is given. Throws
   * ERR_RELATIONSHIP_NOT_FOUND, ERR_RELATIONSHIP_FROM_CONFIG (`from: 'api'` on a config one), ERR_RELATIONSHIP_INVALID.
   */
  update (trustDomain: string, patch: RelationshipPatch, options: { from?: RelationshipSource, bundle?: BootstrapBundle } = {}): FederationRelationship {
    const held = this.#changeable(trustDomain, options.from ?? 'api', 'changed')
    const profileKind = patch.profile ?? held.profile.kind
    const endpointId = patch.endpointSpiffeId ?? (patch.profile === undefined && held.profile.kind === 'https_spiffe' ? held.profile.endpointSpiffeId.toString() : undefined)
    const relationship: FederationRelationship = Object.freeze({
      ...held,
      bundleEndpointUrl: patch.bundleEndpointUrl === undefined ? held.bundleEndpointUrl : validateEndpointUrl(patch.bundleEndpointUrl),
      profile: validateProfile(profileKind, endpointId),
      updatedAt: this.#now()
    })
    if (options.bundle !== undefined) this.#deps.setBundle(held.trustDomain.name, options.bundle.format, options.bundle.bundle)
    return this.#deps.write('relationship-updated', () => {
      this.#deps.table.upsert(relationship)
      return relationship
    })
  }

  /** Deletes a relationship and the trust domain's bundle. Throws ERR_RELATIONSHIP_NOT_FOUND, ERR_RELATIONSHIP_FROM_CONFIG. */
  delete (trustDomain: string, options: { from?: RelationshipSource } = {}): RelationshipDeleted {
    const held = this.#changeable(trustDomain, options.from ?? 'api', 'deleted')
    const relationship = this.#deps.write('relationship-deleted', () => {
      this.#deps.table.delete(held.trustDomain.name)
      return held
    })
    const name = held.trustDomain.name
    return { relationship, bundle: this.#deps.findBundle(name) === undefined ? undefined : this.#deps.deleteBundle(name) }
  }

  /** A relationship by trust domain (`other.example` or `spiffe://other.example`); throws ERR_RELATIONSHIP_NOT_FOUND or ERR_RELATIONSHIP_INVALID. */
  get (trustDomain: string): FederationRelationship {
    const name = relationshipName(trustDomain)
    const held = this.#deps.table.get(name)
    if (held === undefined) {
      throw new RelationshipError('ERR_RELATIONSHIP_NOT_FOUND', `no federation relationship with ${JSON.stringify(trustDomain)} (chaperone federation list shows them)`)
    }
    return held
  }

  /** A relationship by trust domain name, or undefined. */
  find (name: string): FederationRelationship | undefined {
    return this.#deps.table.get(name)
  }

  list (): FederationRelationship[] {
    return this.#deps.table.list()
  }

  /**
   * Makes the config file's relationships the stored ones of source 'config': creates and updates those it lists
   * (replacing a run-time one of the same trust domain: the config file wins), and deletes, with their bundles,
   * those it no longer lists. A bootstrap bundle is stored only when the agent holds none for the trust domain
   * yet: a fetched one is newer. Validates every relationship before changing anything.
   */
  syncFromConfig (inputs: ReadonlyArray<RelationshipInput & { readonly bundle?: BootstrapBundle }>): void {
    const valid = inputs.map(input => ({ ...validateRelationship(input, this.#deps.trustDomain), bundle: input.bundle }))
    for (const held of this.list().filter(r => r.source === 'config' && !valid.some(v => v.trustDomain.equals(r.trustDomain)))) {
      this.delete(held.trustDomain.name, { from: 'config' })
    }
    for (const { bundle, ...relationship } of valid) {
      const name = relationship.trustDomain.name
      if (bundle !== undefined && this.#deps.findBundle(name) === undefined) this.#deps.setBundle(name, bundle.format, bundle.bundle)
      const held = this.find(name)
      if (held !== undefined && held.source === 'config' && sameRelationship(held, relationship)) continue
      const now = this.#now()
      const next: FederationRelationship = Object.freeze({ ...relationship, source: 'config', createdAt: held?.createdAt ?? now, updatedAt: now })
      this.#deps.write(held === undefined ? 'relationship-created' : 'relationship-updated', () => {
        this.#deps.table.upsert(next)
        return next
      })
    }
  }

  #changeable (trustDomain: string, from: RelationshipSource, done: string): FederationRelationship {
    const held = this.get(trustDomain)
    if (held.source === 'config' && from !== 'config') {
      throw new RelationshipError('ERR_RELATIONSHIP_FROM_CONFIG', `the federation relationship with ${held.trustDomain.name} is defined in the agent's config file: ` +
        `it is ${done} there (federation.relationships), then the agent restarted`)
    }
    return held
  }

  #now (): number {
    return Math.floor(this.#deps.clock().getTime() / 1000)
  }
}

function relationshipName (trustDomain: string): string {
  try {
    return parseTrustDomain(trustDomain).name
  } catch (err) {
    throw new RelationshipError('ERR_RELATIONSHIP_INVALID', `the trust domain is not valid: ${(err as Error).message}`)
  }
}

function sameRelationship (a: Pick<FederationRelationship, 'bundleEndpointUrl' | 'profile'>, b: Pick<FederationRelationship, 'bundleEndpointUrl' | 'profile'>): boolean {
  const id = (r: typeof a): string => r.profile.kind === 'https_spiffe' ? r.profile.endpointSpiffeId.toString() : ''
  return a.bundleEndpointUrl === b.bundleEndpointUrl && a.profile.kind === b.profile.kind && id(a) === id(b)
}
