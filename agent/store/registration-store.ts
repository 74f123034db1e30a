/**
 * The agent's registration store: registration entries, federated bundles, the authorities appended to our own
 * trust domain's bundle and the agents attested to this one (its upstream role) in SQLite, validated on the way in,
 * every change one durable transaction that also bumps the store-wide revision, and a change feed the Workload API
 * follows.
 */
import { randomUUID } from 'node:crypto'
import pino from 'pino'
import type { Logger } from 'pino'
import type Database from 'better-sqlite3'
import { BundleError } from '../../spiffe/errors'
import type { TrustDomain } from '../../spiffe/id'
import type { SpiffeBundle } from '../../spiffe/spiffe-bundle'
import { isAppendedAuthoritiesChange, parseAuthorities } from './appended-authority'
import type { AppendedAuthorities, AppendedAuthoritiesChange, AuthoritiesInput, AuthorityRef } from './appended-authority'
import { AppendedAuthorityTable } from './appended-authority-table'
import { appendedAuthorityFor, planAppend } from './authority-merge'
import type { AppendResult, RemoveResult } from './authority-merge'
import { AttestedAgentTable } from './attested-agent-table'
import { AttestedAgents } from './attested-agents'
import { authorizedEntries } from './authorized-entries'
import { ChangeFeed } from './change-feed'
import type { ChangeListener, StoreChange } from './change-feed'
import { freezeEntry, validateEntryId, validateEntryInput, validatePatch } from './entry'
import type { EntryChange, EntryCreateOptions, EntryFields, EntryInput, EntryPatch, EntryWriteOptions, RegistrationEntry } from './entry'
import { EntryTable } from './entry-table'
import type { CreatedEntry } from './entry-table'
import { EntryError } from './errors'
import { federatedTrustDomain, isFederatedBundleChange, validateFederatedBundle } from './federated-bundle'
import type { FederatedBundle, FederatedBundleInput } from './federated-bundle'
import { FederatedBundleTable } from './federated-bundle-table'
import { RelationshipTable } from './federation-relationship-table'
import { FederationRelationships } from './federation-relationships'
import { formatSelector, parseSelector, uniqueSelectors } from './selectors'
import type { Selector } from './selectors'
import { OwnBundleCache } from './own-bundle'
import { openStoreFile } from './store-file'
import type { StoreFile } from './store-file'

export interface RegistrationStoreOptions {
  /** The agent's data directory; created 0700 if missing. */
  readonly dataDir: string
  /** Every entry's SPIFFE ID must be in this trust domain; federated bundles are of other trust domains. */
  readonly trustDomain: TrustDomain
  readonly logger?: Logger
  /** The time for createdAt and for expiry; tests pass a fixed one. */
  readonly clock?: () => Date
}

export interface EntryFilter {
  readonly spiffeId?: string
  readonly selector?: string | Selector
}

/** The meta key holding the store-wide revision; written only by the store itself. */
const STORE_REVISION_KEY = 'store_revision'
/** The meta key holding the unique part of this node's agent ID (schema v3). */
const AGENT_NODE_ID_KEY = 'agent_node_id'

export class RegistrationStore {
  /** `<dataDir>/registrations.sqlite3` */
  readonly path: string
  /**
   * This node's agent SPIFFE ID, `spiffe://<td>/spire/agent/chaperone/<node id>`: the parent of the entries this
   * agent serves (see isServed). SPIRE names an agent `/spire/agent/<node attestor>/<what it attested>`; a
   * Chaperone agent is attested by no server, so "chaperone" stands for the attestor and a random node ID made
   * once with the store for what was attested: unique among the nodes of a trust domain, and as lasting as the
   * entries parented on it (a host name would change with a container's, a machine ID is missing in many).
   */
  readonly agentId: string
  /** `spiffe://<td>/spire/server`: the parent ID of node aliases (see entriesAuthorizedTo). */
  readonly serverId: string
  /** The agents attested to this one (its upstream role). */
  readonly agents: AttestedAgents
  /** The federation relationships: other trust domains' bundle endpoints, which the fetchers poll. */
  readonly relationships: FederationRelationships
  readonly #file: StoreFile
  readonly #entries: EntryTable
  readonly #federatedBundles: FederatedBundleTable
  readonly #appendedAuthorities: AppendedAuthorityTable
  readonly #ownBundle = new OwnBundleCache()
  readonly #feed: ChangeFeed
  readonly #trustDomain: TrustDomain
  readonly #clock: () => Date
  readonly #getMeta: Database.Statement<[string], { value: string }>
  readonly #setMeta: Database.Statement<[string, string]>
  readonly #commit: (write: (storeRevision: number) => StoreChange) => StoreChange
  #revision: number
  #closed = false

  /** Opens the store, creating or migrating it as needed; throws StoreError when the file cannot be used. */
  static open (options: RegistrationStoreOptions): RegistrationStore {
    const clock = options.clock ?? (() => new Date())
    const file = openStoreFile(options.dataDir, unixSeconds(clock()))
    try {
      return new RegistrationStore(file, options, clock)
    } catch (err) {
      file.close()
      throw err
    }
  }

  private constructor (file: StoreFile, options: RegistrationStoreOptions, clock: () => Date) {
    const { db } = file
    this.path = file.path
    this.#file = file
    const logger = (options.logger ?? pino()).child({ component: 'registration-store' })
    this.#entries = new EntryTable(db)
    this.#federatedBundles = new FederatedBundleTable(db, logger)
    this.#appendedAuthorities = new AppendedAuthorityTable(db, options.trustDomain, logger)
    this.agents = new AttestedAgents({
      table: new AttestedAgentTable(db, logger),
      trustDomain: options.trustDomain,
      clock: () => this.#clock(),
      write: (kind, write) => this.#write(storeRevision => ({ kind, agent: write(), storeRevision })).agent
    })
    this.relationships = new FederationRelationships({
      table: new RelationshipTable(db, logger),
      trustDomain: options.trustDomain,
      clock: () => this.#clock(),
      write: (kind, write) => this.#write(storeRevision => ({ kind, relationship: write(), storeRevision })).relationship,
      setBundle: (trustDomain, format, bundle) => this.setFederatedBundle({ trustDomain, format, bundle }),
      findBundle: name => this.findFederatedBundle(name),
      deleteBundle: name => this.deleteFederatedBundle(name)
    })
    this.#feed = new ChangeFeed(logger)
    this.#trustDomain = options.trustDomain
    this.#clock = clock
    this.#getMeta = db.prepare('SELECT value FROM meta WHERE key = ?')
    this.#setMeta = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value')
    this.#revision = Number(this.#getMeta.get(STORE_REVISION_KEY)?.value ?? 0)
    this.agentId = options.trustDomain.id(`/spire/agent/chaperone/${this.#getMeta.get(AGENT_NODE_ID_KEY)?.value ?? ''}`).toString()
    this.serverId = options.trustDomain.id('/spire/server').toString()
    // Writes are serialised by the store's exclusive lock, so the next revision is this write's.
    this.#commit = db.transaction((write: (storeRevision: number) => StoreChange): StoreChange => {
      const change = write(this.#revision + 1)
      this.#setMeta.run(STORE_REVISION_KEY, String(change.storeRevision))
      return change
    })
  }

  /** The store-wide revision: bumped by every committed change, and persisted with it. */
  get revision (): number {
    return this.#revision
  }

  /**
   * Validates and stores a new entry, with the ID given or a random UUID; throws EntryError (ERR_ENTRY_INVALID,
   * ERR_SELECTOR_INVALID, ERR_ENTRY_DUPLICATE, ERR_ENTRY_ID_IN_USE).
   */
  createEntry (input: EntryInput, options: EntryCreateOptions = {}): RegistrationEntry {
    const id = options.id === undefined ? randomUUID() : validateEntryId(options.id)
    const fields = validateEntryInput(input, this.#trustDomain, options.selectorSyntax)
    return this.#writeEntry('created', storeRevision => {
      this.#refuseDuplicate(fields, null)
      if (this.#entries.get(id) !== undefined) throw new EntryError('ERR_ENTRY_ID_IN_USE', `another entry has the ID ${JSON.stringify(id)}`)
      const entry = freezeEntry({ id, ...fields, revision: 0, createdAt: unixSeconds(this.#clock()) })
      this.#entries.insert(entry, storeRevision)
      return entry
    })
  }

  /**
   * Replaces every field of an entry with the input's, as a create would read them (a field left out takes its
   * default); the revision goes up by one. Throws like createEntry, or ERR_ENTRY_NOT_FOUND.
   */
  replaceEntry (id: string, input: EntryInput, options: EntryWriteOptions = {}): RegistrationEntry {
    const fields = validateEntryInput(input, this.#trustDomain, options.selectorSyntax)
    return this.#writeEntry('updated', () => {
      const old = this.#existing(id)
      this.#refuseDuplicate(fields, id)
      const entry = freezeEntry({ id, ...fields, revision: old.revision + 1, createdAt: old.createdAt })
      this.#entries.update(entry)
      return entry
    })
  }

  /** The entry with the same SPIFFE ID, parent ID and selector set as the input (which is validated), if there is one. */
  findSimilarEntry (input: EntryInput, options: EntryWriteOptions = {}): RegistrationEntry | undefined {
    const id = this.#entries.duplicateOf(validateEntryInput(input, this.#trustDomain, options.selectorSyntax), null)
    return id === undefined ? undefined : this.#entries.get(id)
  }

  /** Replaces the fields the patch gives; the entry's revision goes up by one. Throws like createEntry, or ERR_ENTRY_NOT_FOUND. */
  updateEntry (id: string, patch: EntryPatch): RegistrationEntry {
    return this.#writeEntry('updated', () => {
      const old = this.#existing(id)
      const fields = validatePatch(old, patch, this.#trustDomain)
      this.#refuseDuplicate(fields, id)
      const entry = freezeEntry({ id, ...fields, revision: old.revision + 1, createdAt: old.createdAt })
      this.#entries.update(entry)
      return entry
    })
  }

  /** Deletes an entry and returns what was deleted; throws ERR_ENTRY_NOT_FOUND. */
  deleteEntry (id: string): RegistrationEntry {
    return this.#writeEntry('deleted', () => {
      const entry = this.#existing(id)
      this.#entries.delete(id)
      return entry
    })
  }

  getEntry (id: string): RegistrationEntry | undefined {
    return typeof id === 'string' ? this.#entries.get(id) : undefined
  }

  /** Every entry (expired ones too), optionally only those with a SPIFFE ID and/or a selector; sorted by spiffeId, then id. */
  listEntries (filter: EntryFilter = {}): RegistrationEntry[] {
    const selector = typeof filter.selector === 'string' ? parseSelector(filter.selector) : filter.selector
    return this.#entries.list(filter.spiffeId, selector)
  }

  /** Every entry, expired ones too, in creation order, each with the rank of its creation (what SPIRE's paging counts). */
  entriesInCreationOrder (): CreatedEntry[] {
    return this.#entries.byCreation()
  }

  /**
   * Every unexpired entry this agent serves (isServed) whose selectors are all among the workload's (SPIRE's
   * rule), in creation order (exact even within one second), so the first is stable: the Workload API's default
   * SVID. Entries for an SVIDStore (storeSvid) are never issued here, as SPIRE's agent hands them to its store.
   */
  entriesForSelectors (selectors: readonly Selector[]): RegistrationEntry[] {
    return this.#entries.matching(uniqueSelectors(selectors), unixSeconds(this.#clock())).filter(entry => this.isServed(entry))
  }

  /**
   * Whether this agent issues the entry, by SPIRE's rule for one agent (its server's authorizedentries cache): an
   * entry parented on the agent's ID (or on none: entries registered through the admin API without a parent), or
   * on the SPIFFE ID of an entry it serves, recursively. Other entries are stored, never issued here.
   */
  isServed (entry: Pick<RegistrationEntry, 'parentId'>): boolean {
    // Walks up from the parent, one indexed lookup per ID, each ID once (parents may form a cycle), without
    // recursion (a chain may be long).
    const seen = new Set<string>()
    const pending: Array<string | null> = [entry.parentId]
    for (let parentId = pending.pop(); parentId !== undefined; parentId = pending.pop()) {
      if (parentId === null || parentId === this.agentId) return true
      if (seen.has(parentId)) continue
      seen.add(parentId)
      pending.push(...this.#entries.parentsOf(parentId))
    }
    return false
  }

  /**
   * The unexpired entries an attested agent (of SPIFFE ID `agentId`, with its node selectors) may fetch, by SPIRE's
   * rule (authorized-entries.ts): parented on the agent, or on a node alias its selectors match, or, recursively, on
   * an entry already included; each once, in creation order.
   */
  entriesAuthorizedTo (agentId: string, selectors: readonly Selector[]): RegistrationEntry[] {
    return authorizedEntries(this.#entries, agentId, selectors, this.serverId, unixSeconds(this.#clock()))
  }

  /**
   * Validates and stores another trust domain's bundle, replacing the one it had; throws ERR_TRUST_DOMAIN_INVALID,
   * ERR_BUNDLE_OWN_TRUST_DOMAIN or ERR_BUNDLE_INVALID. Entries may name a trust domain before its bundle is set.
   */
  setFederatedBundle (input: FederatedBundleInput): FederatedBundle {
    const bundle = validateFederatedBundle(input, this.#trustDomain)
    const held: FederatedBundle = Object.freeze({ trustDomain: bundle.trustDomain, bundle, updatedAt: unixSeconds(this.#clock()) })
    return this.#write(storeRevision => {
      this.#federatedBundles.upsert(held)
      return { kind: 'federated-bundle-set', bundle: held, storeRevision }
    }).bundle
  }

  /** Deletes a trust domain's bundle and returns what was deleted; throws like getFederatedBundle. */
  deleteFederatedBundle (trustDomain: string): FederatedBundle {
    const held = this.getFederatedBundle(trustDomain)
    return this.#write(storeRevision => {
      this.#federatedBundles.delete(held.trustDomain)
      return { kind: 'federated-bundle-deleted', bundle: held, storeRevision }
    }).bundle
  }

  /** The bundle held for a trust domain (`other.example` or `spiffe://other.example`); throws ERR_BUNDLE_NOT_FOUND if none. */
  getFederatedBundle (trustDomain: string): FederatedBundle {
    const held = this.findFederatedBundle(federatedTrustDomain(trustDomain, this.#trustDomain).name)
    if (held === undefined) throw new BundleError('ERR_BUNDLE_NOT_FOUND', `no federated bundle is held for ${JSON.stringify(trustDomain)} (chaperone bundle list shows those held)`)
    return held
  }

  /** The bundle held for a trust domain name (as entries' federatesWith hold it), or undefined: for the Workload API. */
  findFederatedBundle (name: string): FederatedBundle | undefined {
    return this.#federatedBundles.get(name)
  }

  /** Every federated bundle held, by trust domain name. */
  listFederatedBundles (): FederatedBundle[] {
    return this.#federatedBundles.list()
  }

  /**
   * Appends X.509 and JWT authorities to our own trust domain's bundle (SPIRE's AppendBundle): those it holds already,
   * the CA's (in `caBundle`) or appended before, are not added again; when anything is added, the appended
   * authorities' revision, and so the bundle's sequence number, goes up. Throws AuthorityError (ERR_AUTHORITY_INVALID,
   * ERR_AUTHORITY_KEY_ID_IN_USE).
   */
  appendAuthorities (input: AuthoritiesInput, caBundle: SpiffeBundle): AppendResult {
    const candidates = parseAuthorities(input, this.#trustDomain, unixSeconds(this.#clock()))
    const plan = planAppend(candidates, this.#appendedAuthorities.current.authorities, caBundle)
    if (plan.added.length === 0) return { ...plan, appended: this.#appendedAuthorities.current }
    const change = this.#write((storeRevision): AppendedAuthoritiesChange =>
      ({ kind: 'appended-authorities-changed', bundle: this.#appendedAuthorities.append(plan.added), storeRevision }))
    return { ...plan, appended: change.bundle }
  }

  /**
   * Removes one appended authority from our own trust domain's bundle; throws AuthorityError (ERR_AUTHORITY_NOT_FOUND,
   * ERR_AUTHORITY_OF_CA for one of the CA's, in `caBundle`, ERR_AUTHORITY_INVALID for a malformed fingerprint).
   */
  removeAppendedAuthority (ref: AuthorityRef, caBundle: SpiffeBundle): RemoveResult {
    const removed = appendedAuthorityFor(ref, this.#appendedAuthorities.current.authorities, caBundle)
    const change = this.#write((storeRevision): AppendedAuthoritiesChange =>
      ({ kind: 'appended-authorities-changed', bundle: this.#appendedAuthorities.remove(removed), storeRevision }))
    return { removed, appended: change.bundle }
  }

  /** The authorities appended to our own trust domain's bundle, expired ones too. */
  appendedAuthorities (): AppendedAuthorities {
    return this.#appendedAuthorities.current
  }

  /**
   * Our own trust domain's bundle as it is served: the CA's (`caBundle`) with the appended authorities that have not
   * expired; its sequence number goes up with either's.
   */
  ownBundle (caBundle: SpiffeBundle): SpiffeBundle {
    return this.#ownBundle.get(caBundle, this.#appendedAuthorities.current, unixSeconds(this.#clock()))
  }

  /** Calls `listener` synchronously after each committed change, in commit order; returns the unsubscribe function. */
  onChange (listener: ChangeListener): () => void {
    return this.#feed.subscribe(listener)
  }

  /** A value other parts of the agent (the CA) keep with the store. */
  getMeta (key: string): string | undefined {
    return this.#getMeta.get(key)?.value
  }

  /** Stores a value durably, in its own transaction; does not change the store revision (it is not an entry change). */
  setMeta (key: string, value: string): void {
    if (key === STORE_REVISION_KEY) throw new TypeError(`meta key "${STORE_REVISION_KEY}" belongs to the registration store`)
    this.#setMeta.run(key, value)
  }

  /** Closes the database and releases the lock; safe to call twice. */
  close (): void {
    if (this.#closed) return
    this.#closed = true
    this.#feed.clear()
    this.#file.close()
  }

  /** Commits one change (`write` gets the revision it commits), then announces it. */
  #write<C extends StoreChange> (write: (storeRevision: number) => C): C {
    const change = this.#commit(write) as C
    this.#revision = change.storeRevision
    if (isFederatedBundleChange(change)) this.#federatedBundles.committed(change)
    if (isAppendedAuthoritiesChange(change)) this.#appendedAuthorities.committed(change)
    this.#feed.publish(change)
    return change
  }

  #writeEntry (kind: EntryChange['kind'], write: (storeRevision: number) => RegistrationEntry): RegistrationEntry {
    return this.#write(storeRevision => ({ kind, entry: write(storeRevision), storeRevision })).entry
  }


  #existing (id: string): RegistrationEntry {
    const entry = this.getEntry(id)
    if (entry === undefined) throw new EntryError('ERR_ENTRY_NOT_FOUND', `no registration entry with ID ${JSON.stringify(id)}`)
    return entry
  }

  #refuseDuplicate (fields: EntryFields, exceptId: string | null): void {
    const duplicate = this.#entries.duplicateOf(fields, exceptId)
    if (duplicate !== undefined) {
      throw new EntryError('ERR_ENTRY_DUPLICATE', `entry ${duplicate} already gives ${fields.spiffeId} to the same ` +
        `parent ID and selectors (${fields.selectors.map(formatSelector).join(', ')}); update that entry instead`)
    }
  }
}

function unixSeconds (date: Date): number {
  return Math.floor(date.getTime() / 1000)
}
