/**
 * SPIFFE-ID patterns of the policy's `from` and `to`: an exact ID; `*` as a path segment for exactly one segment;
 * `**` as the last segment for one or more; `spiffe://td/**` for any workload of a trust domain; a bare `*` for
 * any authenticated peer. Wildcards stand for whole segments only, and never for the trust domain, so a pattern
 * can always be read as "these workloads of that trust domain".
 */
import { parseSpiffeId } from '../spiffe/id'

export type IdPattern =
  | { readonly kind: 'any', readonly text: string }
  | {
    readonly kind: 'path'
    readonly text: string
    readonly trustDomain: string
    /** Path segments before a trailing `**`: literals, or `*` for any one segment. */
    readonly segments: readonly string[]
    /** True when the pattern ends in `**`: one or more further segments. */
    readonly deep: boolean
  }

export const ANY_SEGMENT = '*'
const DEEP = '**'
const SCHEME = 'spiffe://'

/** Parses a pattern; returns the reason it is invalid as a string. */
export function parseIdPattern (text: string): IdPattern | string {
  if (text === ANY_SEGMENT) return { kind: 'any', text }
  if (!text.startsWith(SCHEME)) return 'must be a SPIFFE ID (spiffe://trust-domain/path), a pattern of one, or * for any peer'
  const slash = text.indexOf('/', SCHEME.length)
  const trustDomain = slash === -1 ? text.slice(SCHEME.length) : text.slice(SCHEME.length, slash)
  if (trustDomain.includes('*')) return 'wildcards cannot stand for the trust domain: write * for any peer, or spiffe://<trust domain>/** for a whole trust domain'
  const segments = slash === -1 ? [] : text.slice(slash + 1).split('/')
  const deep = segments.at(-1) === DEEP
  if (deep) segments.pop()
  for (const segment of segments) {
    if (segment === DEEP) return '** must be the last segment'
    if (segment !== ANY_SEGMENT && segment.includes('*')) return `* must be a whole path segment ("${segment}" is not supported)`
  }
  // What remains must be a valid SPIFFE ID once every wildcard is read as a plain segment.
  const concrete = SCHEME + trustDomain + [...segments, ...(deep ? ['x'] : [])].map(s => `/${s === ANY_SEGMENT ? 'x' : s}`).join('')
  try {
    parseSpiffeId(concrete)
  } catch (err) {
    return (err as Error).message.replace(/^invalid SPIFFE ID "[^"]*": /, '').replace(/^invalid SPIFFE ID [^:]*: /, '')
  }
  return { kind: 'path', text, trustDomain, segments, deep }
}

/** Splits a valid SPIFFE ID into its trust domain and path segments. */
export function splitSpiffeId (id: string): { trustDomain: string, segments: string[] } {
  const slash = id.indexOf('/', SCHEME.length)
  if (slash === -1) return { trustDomain: id.slice(SCHEME.length), segments: [] }
  return { trustDomain: id.slice(SCHEME.length, slash), segments: id.slice(slash + 1).split('/') }
}

/** Whether a valid SPIFFE ID matches the pattern: the plain form the compiled index must agree with. */
export function matchesIdPattern (pattern: IdPattern, id: string): boolean {
  if (pattern.kind === 'any') return true
  const { trustDomain, segments } = splitSpiffeId(id)
  if (trustDomain !== pattern.trustDomain) return false
  if (pattern.deep ? segments.length <= pattern.segments.length : segments.length !== pattern.segments.length) return false
  return pattern.segments.every((segment, i) => segment === ANY_SEGMENT || segment === segments[i])
}

/** Whether every ID `inner` matches is matched by `outer` (exact for single patterns; used to find shadowed rules). */
export function idPatternCovers (outer: IdPattern, inner: IdPattern): boolean {
  if (outer.kind === 'any') return true
  if (inner.kind === 'any' || inner.trustDomain !== outer.trustDomain) return false
  const n = outer.segments.length
  const m = inner.segments.length
  // inner matches lengths m (or more, when deep); outer needs exactly n (or more than n, when deep).
  if (outer.deep ? m < n || (m === n && !inner.deep) : inner.deep || m !== n) return false
  return outer.segments.every((segment, i) => segment === ANY_SEGMENT || segment === inner.segments[i])
}

/** True for a pattern that can never match a workload: a trust domain's own ID, which no SVID carries. */
export function namesOnlyTrustDomain (pattern: IdPattern): boolean {
  return pattern.kind === 'path' && pattern.segments.length === 0 && !pattern.deep
}
