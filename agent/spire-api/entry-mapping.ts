/**
 * Registration entries between SPIRE's API (spire.api.types.Entry) and our store: the one place that knows how each
 * field maps. Reading follows SPIRE's server (api/entry.go ProtoToRegistrationEntryWithMask) check by check and
 * word by word; the store then applies its own rules too (a TTL of at most a year, DNS names lowercased).
 *
 * Parent IDs: SPIRE entries always have one. An entry parented on this agent's ID is kept with no parent, as
 * entries registered through our admin API without one are, and every entry without a parent is shown with the
 * agent's ID: both mean "served by this agent" (RegistrationStore.isServed), whatever the agent's ID may become.
 */
import type { EntryInput, RegistrationEntry } from '../store'
import { SpireApiError } from './api-error'
import type { EntryMaskMessage, EntryMessage, MaskableField, SelectorMessage } from './messages'
import { idToProto, memberIdFromProto, trustDomainName, workloadIdFromProto } from './spire-id'

export interface EntryContext {
  /** The agent's trust domain name. */
  readonly trustDomain: string
  /** This node's agent ID (RegistrationStore.agentId). */
  readonly agentId: string
}

/** SPIRE's hintMaximumLength, in bytes as Go counts a string. */
const MAX_HINT_BYTES = 1024

interface FieldMapping {
  /** The field's part of an EntryInput, read from a message (throws SpireApiError with SPIRE's reason). */
  readonly read: (m: EntryMessage, ctx: EntryContext) => Partial<EntryInput>
  /** The same part, kept from a stored entry (an update whose input mask leaves the field out). */
  readonly keep: (e: RegistrationEntry) => Partial<EntryInput>
  /** The field's value in a message. */
  readonly write: (e: RegistrationEntry, ctx: EntryContext) => Partial<EntryMessage>
  /** The field's zero, for an output mask that leaves it out. */
  readonly zero: Partial<EntryMessage>
}

const ttl = (seconds: number): number | undefined => seconds === 0 ? undefined : seconds

/** In the order SPIRE checks them, so the first problem reported is the one SPIRE would report. */
const FIELDS: { readonly [K in MaskableField]: FieldMapping } = {
  parent_id: {
    read: (m, ctx) => {
      const parentId = SpireApiError.within('invalid parent ID', () => memberIdFromProto(ctx.trustDomain, m.parent_id))
      return { parentId: parentId === ctx.agentId ? null : parentId }
    },
    keep: e => ({ parentId: e.parentId }),
    write: (e, ctx) => ({ parent_id: idToProto(e.parentId ?? ctx.agentId) }),
    zero: { parent_id: null }
  },
  spiffe_id: {
    read: (m, ctx) => ({ spiffeId: SpireApiError.within('invalid spiffe ID', () => workloadIdFromProto(ctx.trustDomain, m.spiffe_id)) }),
    keep: e => ({ spiffeId: e.spiffeId }),
    write: e => ({ spiffe_id: idToProto(e.spiffeId) }),
    zero: { spiffe_id: null }
  },
  admin: flagField('admin', 'admin'),
  dns_names: {
    read: m => ({ dnsNames: m.dns_names.map(name => SpireApiError.within('invalid DNS name', () => dnsName(name))) }),
    keep: e => ({ dnsNames: [...e.dnsNames] }),
    write: e => ({ dns_names: [...e.dnsNames] }),
    zero: { dns_names: [] }
  },
  downstream: flagField('downstream', 'downstream'),
  expires_at: {
    read: m => ({ expiresAt: m.expires_at === 0 ? null : m.expires_at }),
    keep: e => ({ expiresAt: e.expiresAt }),
    write: e => ({ expires_at: e.expiresAt ?? 0 }),
    zero: { expires_at: 0 }
  },
  federates_with: {
    read: m => ({ federatesWith: m.federates_with.map(td => SpireApiError.within('invalid federated trust domain', () => trustDomainName(td))) }),
    keep: e => ({ federatesWith: [...e.federatesWith] }),
    write: e => ({ federates_with: [...e.federatesWith] }),
    zero: { federates_with: [] }
  },
  selectors: {
    read: m => ({ selectors: selectorsOf(m.selectors) }),
    keep: e => ({ selectors: [...e.selectors] }),
    write: e => ({ selectors: e.selectors.map(s => ({ type: s.type, value: s.value })) }),
    zero: { selectors: [] }
  },
  revision_number: {
    // Set by the store: what a client sends is ignored, as SPIRE's datastore ignores it.
    read: () => ({}),
    keep: () => ({}),
    write: e => ({ revision_number: e.revision }),
    zero: { revision_number: 0 }
  },
  store_svid: flagField('store_svid', 'storeSvid'),
  x509_svid_ttl: {
    read: m => ({ x509SvidTtl: ttl(m.x509_svid_ttl) }),
    keep: e => ({ x509SvidTtl: ttl(e.x509SvidTtl) }),
    write: e => ({ x509_svid_ttl: e.x509SvidTtl }),
    zero: { x509_svid_ttl: 0 }
  },
  jwt_svid_ttl: {
    read: m => ({ jwtSvidTtl: ttl(m.jwt_svid_ttl) }),
    keep: e => ({ jwtSvidTtl: ttl(e.jwtSvidTtl) }),
    write: e => ({ jwt_svid_ttl: e.jwtSvidTtl }),
    zero: { jwt_svid_ttl: 0 }
  },
  hint: {
    read: m => {
      if (Buffer.byteLength(m.hint) > MAX_HINT_BYTES) throw SpireApiError.invalid(`hint is too long, max length is ${MAX_HINT_BYTES} characters`)
      return { hint: m.hint }
    },
    keep: e => ({ hint: e.hint }),
    write: e => ({ hint: e.hint }),
    zero: { hint: '' }
  },
  created_at: {
    // Set by the store.
    read: () => ({}),
    keep: () => ({}),
    write: e => ({ created_at: e.createdAt }),
    zero: { created_at: 0 }
  }
}
const FIELD_NAMES = Object.keys(FIELDS) as MaskableField[]

/** A stored entry as SPIRE's API shows it (every field; see maskEntry). */
export function entryToMessage (entry: RegistrationEntry, ctx: EntryContext): EntryMessage {
  return Object.assign({ id: entry.id }, ...FIELD_NAMES.map(name => FIELDS[name].write(entry, ctx))) as EntryMessage
}

/** SPIRE's applyMask: with a mask, every field it leaves out is zeroed (the ID always stays); without one, all stay. */
export function maskEntry (message: EntryMessage, mask: EntryMaskMessage | null): EntryMessage {
  if (mask === null) return message
  return Object.assign({ ...message }, ...FIELD_NAMES.filter(name => !mask[name]).map(name => FIELDS[name].zero)) as EntryMessage
}

/**
 * An entry sent to SPIRE's API as store input: with no input mask every field is read from the message (a create,
 * or an update that replaces the whole entry); with one, the fields it names are read and the others are kept from
 * `current`. Throws SpireApiError (INVALID_ARGUMENT) with SPIRE's reason; the caller adds "failed to convert entry".
 */
export function messageToInput (message: EntryMessage | null, ctx: EntryContext, mask: EntryMaskMessage | null = null, current?: RegistrationEntry): EntryInput {
  if (message === null) throw SpireApiError.invalid('missing entry')
  const parts = FIELD_NAMES.map(name => mask === null || mask[name] ? FIELDS[name].read(message, ctx) : current === undefined ? {} : FIELDS[name].keep(current))
  const input = Object.assign({}, ...parts) as EntryInput
  for (const key of Object.keys(input) as Array<keyof EntryInput>) if (input[key] === undefined) delete input[key]
  return input
}

function flagField (field: 'admin' | 'downstream' | 'store_svid', key: 'admin' | 'downstream' | 'storeSvid'): FieldMapping {
  return {
    read: m => ({ [key]: m[field] }),
    keep: e => ({ [key]: e[key] }),
    write: e => ({ [field]: e[key] }),
    zero: { [field]: false }
  }
}

/** SPIRE's api/selector.go SelectorsFromProto, and its "selector list is empty". */
function selectorsOf (selectors: readonly SelectorMessage[]): SelectorMessage[] {
  if (selectors.length === 0) throw SpireApiError.invalid('selector list is empty')
  return selectors.map(checkSelector)
}

/** One selector by SPIRE's rule: a type without ":" and a value, neither empty. */
export function checkSelector (selector: SelectorMessage): SelectorMessage {
  if (selector.type === '') throw SpireApiError.invalid('missing selector type')
  if (selector.type.includes(':')) throw SpireApiError.invalid('selector type contains \':\'')
  if (selector.value === '') throw SpireApiError.invalid('missing selector value')
  return { type: selector.type, value: selector.value }
}

/**
 * The first checks of SPIRE's x509util.ValidateLabel, in its words; the rest (each label's letters, digits and
 * hyphens, lengths) the store checks with its own.
 */
function dnsName (name: string): string {
  // eslint-disable-next-line no-control-regex
  if (!/^[\x00-\x7f]*$/.test(name)) throw SpireApiError.invalid('name must be ascii')
  const stars = name.split('*').length - 1
  if (stars > 1) throw SpireApiError.invalid('too many wildcards')
  if (stars === 1 && !name.startsWith('*.')) throw SpireApiError.invalid('wildcard must be first label')
  const rest = stars === 1 ? name.slice(2) : name
  if (rest.trim() === '') throw SpireApiError.invalid('empty or only whitespace')
  if (rest.endsWith('.')) throw SpireApiError.invalid('domain ends with dot')
  return name
}
