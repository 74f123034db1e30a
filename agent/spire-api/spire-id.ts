/**
 * SPIFFE IDs and trust domains as SPIRE's server reads them from its API, with its words: go-spiffe's parser
 * (spiffeid: TrustDomainFromString, FromPath, FromString) and the server's membership rules (api/id.go). Our own
 * parser (spiffe/id.ts) decides the same IDs; these messages are what SPIRE's clients expect to see.
 */
import { SpireApiError } from './api-error'
import type { SpiffeIdMessage } from './messages'

const SCHEME = 'spiffe://'
const TRUST_DOMAIN_CHAR = /^[a-z0-9._-]$/
const PATH_CHAR = /^[a-zA-Z0-9._-]$/

/** The name of a trust domain given by name or by any SPIFFE ID in it (go-spiffe's TrustDomainFromString). */
export function trustDomainName (text: string): string {
  if (text === '') throw SpireApiError.invalid('trust domain is missing')
  if (text.includes(':/')) return parseId(text).trustDomain
  if (![...text].every(c => TRUST_DOMAIN_CHAR.test(c))) throw SpireApiError.invalid('trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores')
  return text
}

/** A SPIFFE ID message as its text (SPIRE's IDFromProto). */
export function idFromProto (id: SpiffeIdMessage | null): string {
  if (id === null) throw SpireApiError.invalid('request must specify SPIFFE ID')
  const name = trustDomainName(id.trust_domain)
  checkPath(id.path)
  return `${SCHEME}${name}${id.path}`
}

/** An ID in `trustDomain` with a path: what a parent ID may be (SPIRE's TrustDomainMemberIDFromProto). */
export function memberIdFromProto (trustDomain: string, id: SpiffeIdMessage | null): string {
  const text = idFromProto(id)
  const { trustDomain: name, path } = parseId(text)
  if (name !== trustDomain) throw SpireApiError.invalid(`${quote(text)} is not a member of trust domain ${quote(trustDomain)}`)
  if (path === '') throw SpireApiError.invalid(`${quote(text)} is not a member of trust domain ${quote(trustDomain)}; path is empty`)
  return text
}

/** An ID in `trustDomain` with a path outside `/spire`: what an entry's SPIFFE ID may be (TrustDomainWorkloadIDFromProto). */
export function workloadIdFromProto (trustDomain: string, id: SpiffeIdMessage | null): string {
  const text = idFromProto(id)
  const { trustDomain: name, path } = parseId(text)
  if (name !== trustDomain) throw SpireApiError.invalid(`${quote(text)} is not a member of trust domain ${quote(trustDomain)}`)
  if (path === '') throw SpireApiError.invalid(`${quote(text)} is not a workload in trust domain ${quote(trustDomain)}; path is empty`)
  if (path === '/spire' || path.startsWith('/spire/')) {
    throw SpireApiError.invalid(`${quote(text)} is not a workload in trust domain ${quote(trustDomain)}; path is in the reserved namespace`)
  }
  return text
}

/** A canonical SPIFFE ID (as the store keeps them) as its message. */
export function idToProto (text: string): SpiffeIdMessage {
  const { trustDomain, path } = parseId(text)
  return { trust_domain: trustDomain, path }
}

/** go-spiffe's FromString. */
function parseId (text: string): { trustDomain: string, path: string } {
  if (text === '') throw SpireApiError.invalid('cannot be empty')
  if (!text.startsWith(SCHEME)) throw SpireApiError.invalid('scheme is missing or invalid')
  const slash = text.indexOf('/', SCHEME.length)
  const trustDomain = text.slice(SCHEME.length, slash === -1 ? undefined : slash)
  if (![...trustDomain].every(c => TRUST_DOMAIN_CHAR.test(c))) throw SpireApiError.invalid('trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores')
  if (trustDomain === '') throw SpireApiError.invalid('trust domain is missing')
  const path = slash === -1 ? '' : text.slice(slash)
  checkPath(path)
  return { trustDomain, path }
}

/** go-spiffe's ValidatePath: "" or "/segment[/segment…]", no empty, "." or ".." segments, no trailing "/". */
function checkPath (path: string): void {
  if (path === '') return
  if (!path.startsWith('/')) throw SpireApiError.invalid('path must have a leading slash')
  const segments = path.slice(1).split('/')
  segments.forEach((segment, i) => {
    if (segment === '') throw SpireApiError.invalid(i === segments.length - 1 ? 'path cannot have a trailing slash' : 'path cannot contain empty segments')
    if (segment === '.' || segment === '..') throw SpireApiError.invalid('path cannot contain dot segments')
    if (![...segment].every(c => PATH_CHAR.test(c))) throw SpireApiError.invalid('path segment characters are limited to letters, numbers, dots, dashes, and underscores')
  })
}

/** Go's %q for the IDs and names here, which are printable ASCII once parsed. */
function quote (text: string): string {
  return JSON.stringify(text)
}
