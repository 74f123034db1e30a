/**
 * Registration entries: which SPIFFE ID a workload gets when its selectors match (SPIRE's entry fields,
 * spiffe-facts.md). validateEntryInput turns what an operator sent into the canonical fields the store keeps,
 * or throws an EntryError whose message names the field and the rule it breaks.
 */
import { parseSpiffeId, parseTrustDomain } from '../../spiffe/id'
import type { SpiffeId, TrustDomain } from '../../spiffe/id'
import { EntryError } from './errors'
import { normalizeSelectors } from './selectors'
import type { Selector } from './selectors'

export interface RegistrationEntry {
  /** A random UUID. */
  readonly id: string
  /** Canonical, with a path, in the store's trust domain. */
  readonly spiffeId: string
  readonly parentId: string | null
  /** At least one; de-duplicated and sorted by type, then value. */
  readonly selectors: readonly Selector[]
  /** Seconds; 0 = the agent's default. */
  readonly x509SvidTtl: number
  /** Seconds; 0 = the agent's default. */
  readonly jwtSvidTtl: number
  /** Lowercased, de-duplicated, in the order given (the first may become a certificate's common name). */
  readonly dnsNames: readonly string[]
  /** '' when unset. */
  readonly hint: string
  readonly admin: boolean
  readonly downstream: boolean
  /** SPIRE's store_svid: the SVID is for an SVIDStore plugin, never issued over the Workload API. */
  readonly storeSvid: boolean
  /** Trust domain names, sorted. */
  readonly federatesWith: readonly string[]
  /** Unix seconds; null = never. */
  readonly expiresAt: number | null
  /** 0 at create, +1 per update. */
  readonly revision: number
  /** Unix seconds. */
  readonly createdAt: number
}

export interface EntryInput {
  spiffeId: string
  selectors: Array<string | Selector>
  parentId?: string | null
  x509SvidTtl?: number
  jwtSvidTtl?: number
  dnsNames?: string[]
  hint?: string
  admin?: boolean
  downstream?: boolean
  storeSvid?: boolean
  federatesWith?: string[]
  expiresAt?: number | null
}

/**
 * How selectors are checked: `attested` (the default) accepts only the forms our workload attestors produce, each in
 * its one canonical spelling; `spire` accepts any `type:value` with a type and a value, as SPIRE's server does (a
 * selector of a type this agent does not attest is stored and never matches, as on a SPIRE agent without that
 * attestor).
 */
export type SelectorSyntax = 'attested' | 'spire'

export interface EntryWriteOptions {
  readonly selectorSyntax?: SelectorSyntax
}

export interface EntryCreateOptions extends EntryWriteOptions {
  /** The entry's ID (SPIRE's rule: 1–255 of `A–Z a–z 0–9 . _ -`); a random UUID when left out. */
  readonly id?: string
}

/** Fields given replace the old values; absent (or undefined) fields keep them. */
export type EntryPatch = Partial<EntryInput>

export interface EntryChange {
  readonly kind: 'created' | 'updated' | 'deleted'
  readonly entry: RegistrationEntry
  /** The store-wide revision this change committed. */
  readonly storeRevision: number
}

/** The fields an operator controls, validated and canonical. */
export type EntryFields = Omit<RegistrationEntry, 'id' | 'revision' | 'createdAt'>

/** One year: SVIDs living longer than their CA or than a plausible rotation plan are a mistake, not a choice. */
export const MAX_TTL_SECONDS = 365 * 24 * 60 * 60
export const MAX_HINT_LENGTH = 1024
/** 9999-12-31T23:59:59Z: beyond this a timestamp is a unit mistake (milliseconds), not a date. */
export const MAX_UNIX_SECONDS = 253_402_300_799

type FieldValidators = {
  readonly [K in keyof EntryFields]: (value: unknown, trustDomain: TrustDomain, syntax: SelectorSyntax) => EntryFields[K]
}

/** One validator per field, in the order errors are reported. */
const FIELDS: FieldValidators = {
  spiffeId: workloadId,
  parentId: value => value === undefined || value === null ? null : spiffeIdField(value, 'parentId').toString(),
  selectors: (value, _trustDomain, syntax) => selectors(value, syntax),
  x509SvidTtl: value => ttl(value, 'x509SvidTtl'),
  jwtSvidTtl: value => ttl(value, 'jwtSvidTtl'),
  dnsNames: value => [...new Set(listField(value, 'dnsNames', dnsName))],
  hint,
  admin: value => flag(value, 'admin'),
  downstream: value => flag(value, 'downstream'),
  storeSvid: value => flag(value, 'storeSvid'),
  federatesWith: (value, trustDomain) =>
    [...new Set(listField(value, 'federatesWith', name => federatedDomain(name, trustDomain)))].sort(),
  expiresAt
}
const FIELD_NAMES = Object.keys(FIELDS) as Array<keyof EntryFields>

/** Validates an entry as sent by an operator (possibly as JSON, so every type is checked at run time). */
export function validateEntryInput (input: EntryInput, trustDomain: TrustDomain, syntax: SelectorSyntax = 'attested'): EntryFields {
  const given = fieldsOf(input, 'an entry')
  const fields: Partial<Record<keyof EntryFields, unknown>> = {}
  for (const name of FIELD_NAMES) fields[name] = FIELDS[name](given[name], trustDomain, syntax)
  return checkStoreSvid(fields as EntryFields)
}

/** The entry's fields with a patch applied: each field the patch gives (not undefined) is validated and replaces the old. */
export function validatePatch (entry: EntryFields, patch: EntryPatch, trustDomain: TrustDomain): EntryFields {
  const given = fieldsOf(patch, 'a patch')
  const fields: Partial<Record<keyof EntryFields, unknown>> = {}
  for (const name of FIELD_NAMES) fields[name] = given[name] === undefined ? entry[name] : FIELDS[name](given[name], trustDomain, 'attested')
  return checkStoreSvid(fields as EntryFields)
}

/** SPIRE's entry IDs: what its datastore accepts (sqlstore.go validEntryIDChars, at most 255). */
const ENTRY_ID = /^[A-Za-z0-9._-]{1,255}$/

/** An entry ID given by the caller; throws ERR_ENTRY_INVALID naming SPIRE's rule. */
export function validateEntryId (id: unknown): string {
  if (typeof id !== 'string' || !ENTRY_ID.test(id)) {
    throw invalid(`an entry ID must be 1 to 255 letters, digits, ".", "_" or "-"; got ${typeof id === 'string' ? JSON.stringify(id.slice(0, 300)) : shown(id)}`)
  }
  return id
}

/** SPIRE's rule: an SVID for an SVIDStore is selected by one platform, so its selectors all have one type. */
function checkStoreSvid (fields: EntryFields): EntryFields {
  if (fields.storeSvid && new Set(fields.selectors.map(selector => selector.type)).size > 1) {
    throw invalid(`storeSvid needs selectors all of one type; got ${[...new Set(fields.selectors.map(selector => selector.type))].join(', ')}`)
  }
  return fields
}

/** Entries are shared with every listener and caller, so they are frozen, lists included. */
export function freezeEntry (entry: RegistrationEntry): RegistrationEntry {
  Object.freeze(entry.selectors)
  Object.freeze(entry.dnsNames)
  Object.freeze(entry.federatesWith)
  return Object.freeze(entry)
}

function fieldsOf (value: unknown, what: string): Partial<Record<keyof EntryFields, unknown>> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(`${what} must be an object`)
  for (const key of Object.keys(value)) {
    if (!Object.hasOwn(FIELDS, key)) throw invalid(`unknown field ${JSON.stringify(key)}; known fields: ${FIELD_NAMES.join(', ')}`)
  }
  return value
}

function workloadId (value: unknown, trustDomain: TrustDomain): string {
  const id = spiffeIdField(value, 'spiffeId')
  if (!id.hasPath) throw invalid(`spiffeId must have a path: "${id.toString()}" names the trust domain itself, not a workload`)
  if (!id.memberOf(trustDomain)) {
    throw invalid(`spiffeId must be in this agent's trust domain "${trustDomain.name}", not "${id.trustDomain.name}"`)
  }
  return id.toString()
}

function spiffeIdField (value: unknown, field: string): SpiffeId {
  if (typeof value !== 'string') throw invalid(`${field} must be a SPIFFE ID string like "spiffe://example.org/app"`)
  try {
    return parseSpiffeId(value)
  } catch (err) {
    throw invalid(`${field}: ${(err as Error).message}`)
  }
}

function selectors (value: unknown, syntax: SelectorSyntax): readonly Selector[] {
  if (!Array.isArray(value) || value.length === 0) throw invalid('selectors must list at least one selector, e.g. "unix:uid:1001"')
  return normalizeSelectors(value as Array<string | Selector>, syntax)
}

/** Absent means the agent's default (0); a TTL that is given must be a real duration. */
function ttl (value: unknown, field: string): number {
  if (value === undefined) return 0
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0 || value > MAX_TTL_SECONDS) {
    throw invalid(`${field} must be a positive whole number of seconds, at most ${MAX_TTL_SECONDS} (1 year); got ${shown(value)}`)
  }
  return value
}

function hint (value: unknown): string {
  if (value === undefined) return ''
  if (typeof value !== 'string' || value.length > MAX_HINT_LENGTH) {
    throw invalid(`hint must be a string of at most ${MAX_HINT_LENGTH} characters`)
  }
  return value
}

function flag (value: unknown, field: string): boolean {
  if (value === undefined) return false
  if (typeof value !== 'boolean') throw invalid(`${field} must be true or false; got ${shown(value)}`)
  return value
}

function expiresAt (value: unknown): number | null {
  if (value === undefined || value === null) return null
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_UNIX_SECONDS) {
    throw invalid(`expiresAt must be a whole number of unix seconds (or null for never); got ${shown(value)}`)
  }
  return value
}

function listField<T> (value: unknown, field: string, parse: (item: string) => T): T[] {
  if (value === undefined) return []
  if (!Array.isArray(value)) throw invalid(`${field} must be a list`)
  return value.map(item => {
    if (typeof item !== 'string') throw invalid(`${field} must list strings; got ${shown(item)}`)
    return parse(item)
  })
}

/** RFC 1123 labels; a wildcard only as the whole leftmost label. Letters are matched ASCII-only, then lowercased. */
const DNS_LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/
const MAX_DNS_NAME_LENGTH = 253

function dnsName (name: string): string {
  const labels = (name.startsWith('*.') ? name.slice(2) : name).split('.')
  const bad = labels.find(label => !DNS_LABEL.test(label))
  if (bad !== undefined || name.length > MAX_DNS_NAME_LENGTH) {
    throw invalid(`dnsNames: ${JSON.stringify(name)} is not a DNS name: labels of 1–63 letters, digits and hyphens ` +
      `(no leading or trailing hyphen), separated by single dots, at most ${MAX_DNS_NAME_LENGTH} characters, ` +
      'optionally starting with "*."')
  }
  return name.toLowerCase()
}

function federatedDomain (name: string, trustDomain: TrustDomain): string {
  let federated: TrustDomain
  try {
    federated = parseTrustDomain(name)
  } catch (err) {
    throw invalid(`federatesWith: ${(err as Error).message}`)
  }
  if (federated.equals(trustDomain)) throw invalid(`federatesWith must name other trust domains, not the agent's own "${trustDomain.name}"`)
  return federated.name
}

/** A value as JSON (what an API client sent), except numbers, which JSON would show NaN and Infinity as null. */
function shown (value: unknown): string {
  return typeof value === 'number' ? String(value) : JSON.stringify(value) ?? typeof value
}

function invalid (message: string): EntryError {
  return new EntryError('ERR_ENTRY_INVALID', message)
}
