/** Registration entries as admin API messages (admin.proto's Entry) and back. */
import type { EntryInput, EntryPatch, RegistrationEntry } from '../store'
import { formatSelector } from '../store'

/** admin.proto's Entry, as grpc-js hands it over (keepCase, longs as numbers, defaults filled). */
export interface EntryMessage {
  id: string
  spiffe_id: string
  parent_id: string
  selectors: string[]
  x509_svid_ttl: number
  jwt_svid_ttl: number
  dns_names: string[]
  hint: string
  admin: boolean
  downstream: boolean
  federates_with: string[]
  expires_at: number
  revision: number
  created_at: number
  store_svid: boolean
  /** Output only: whether this agent issues the entry, and if not why (entry-served.ts). */
  served: boolean
  not_served_reason: string
}

/** The entry as a message; `notServedReason` is why this agent does not issue it (null: it does). */
export function entryToMessage (entry: RegistrationEntry, notServedReason: string | null): EntryMessage {
  return {
    id: entry.id,
    spiffe_id: entry.spiffeId,
    parent_id: entry.parentId ?? '',
    selectors: entry.selectors.map(formatSelector),
    x509_svid_ttl: entry.x509SvidTtl,
    jwt_svid_ttl: entry.jwtSvidTtl,
    dns_names: [...entry.dnsNames],
    hint: entry.hint,
    admin: entry.admin,
    downstream: entry.downstream,
    federates_with: [...entry.federatesWith],
    expires_at: entry.expiresAt ?? 0,
    revision: entry.revision,
    created_at: entry.createdAt,
    store_svid: entry.storeSvid,
    served: notServedReason === null,
    not_served_reason: notServedReason ?? ''
  }
}

/** Message field → how it becomes an EntryInput field; the keys are also the names UpdateEntry accepts. */
const FIELDS: { [K in keyof EntryMessage]?: (m: EntryMessage) => Partial<EntryInput> } = {
  spiffe_id: m => ({ spiffeId: m.spiffe_id }),
  parent_id: m => ({ parentId: m.parent_id === '' ? null : m.parent_id }),
  selectors: m => ({ selectors: m.selectors }),
  x509_svid_ttl: m => ({ x509SvidTtl: m.x509_svid_ttl }),
  jwt_svid_ttl: m => ({ jwtSvidTtl: m.jwt_svid_ttl }),
  dns_names: m => ({ dnsNames: m.dns_names }),
  hint: m => ({ hint: m.hint }),
  admin: m => ({ admin: m.admin }),
  downstream: m => ({ downstream: m.downstream }),
  store_svid: m => ({ storeSvid: m.store_svid }),
  federates_with: m => ({ federatesWith: m.federates_with }),
  expires_at: m => ({ expiresAt: m.expires_at === 0 ? null : m.expires_at })
}

/** The names UpdateEntry's `fields` may hold. */
export const UPDATABLE_FIELDS = Object.keys(FIELDS)

/** A create request: every field; TTLs of 0 mean "the agent's default" and are left out. */
export function messageToInput (m: EntryMessage): EntryInput {
  const input = Object.assign({}, ...Object.values(FIELDS).map(f => f(m))) as EntryInput
  if (m.x509_svid_ttl === 0) delete input.x509SvidTtl
  if (m.jwt_svid_ttl === 0) delete input.jwtSvidTtl
  return input
}

/** An update request: only the named fields; an unknown name is reported by the caller. */
export function messageToPatch (m: EntryMessage, fields: readonly string[]): EntryPatch {
  return Object.assign({}, ...fields.map(name => FIELDS[name as keyof EntryMessage]?.(m) ?? {})) as EntryPatch
}
