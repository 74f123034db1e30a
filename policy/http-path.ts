/**
 * HTTP paths as the policy compares them. A request's path is normalized first (RFC 3986 §6.2.2: unreserved
 * characters decoded, dot segments removed; repeated slashes merged), so `/v1/../admin` cannot pass as `/v1/*`.
 * Encoded slashes and backslashes are refused rather than guessed at: an app that decodes them after the check
 * would otherwise see a different path from the one the policy allowed.
 * Patterns are exact paths or prefixes ending in `*`; they must be written normalized.
 */

export type PathPattern = { readonly exact: string } | { readonly prefix: string }

/** Why a request path is refused, or the normalized path (without query or fragment). */
export function normalizeRequestPath (target: string): { path: string } | { problem: string } {
  const end = target.search(/[?#]/)
  const raw = end === -1 ? target : target.slice(0, end)
  if (!raw.startsWith('/')) return { problem: 'the request path must begin with "/"' }
  if (/%(2f|5c)/i.test(raw) || raw.includes('\\')) return { problem: 'encoded slashes and backslashes are refused in request paths' }
  if (/%(?![0-9a-f]{2})/i.test(raw)) return { problem: 'the request path has a malformed percent-escape' }
  if (/[^\x21-\x7e]/.test(raw)) return { problem: 'the request path contains characters other than visible ASCII (percent-encode them)' }
  const decoded = raw.replace(/%([0-9a-f]{2})/gi, (escape, hex: string) => {
    const char = String.fromCharCode(parseInt(hex, 16))
    return /[A-Za-z0-9\-._~]/.test(char) ? char : escape.toUpperCase()
  })
  return { path: removeDotSegments(decoded.replace(/\/{2,}/g, '/')) }
}

/** RFC 3986 §5.2.4 on an absolute path (already free of repeated slashes). */
function removeDotSegments (path: string): string {
  const output: string[] = []
  const segments = path.split('/').slice(1)
  segments.forEach((segment, i) => {
    const last = i === segments.length - 1
    if (segment === '..') {
      output.pop()
      if (last) output.push('')
    } else if (segment === '.') {
      if (last) output.push('')
    } else {
      output.push(segment)
    }
  })
  return `/${output.join('/')}`
}

/** Parses a path pattern of a rule; returns the reason it is invalid as a string. */
export function parsePathPattern (text: string): PathPattern | string {
  const star = text.indexOf('*')
  if (star !== -1 && star !== text.length - 1) return '* is only allowed at the end of a path, as a prefix (/v1/*)'
  const path = star === -1 ? text : text.slice(0, -1)
  if (/[?#]/.test(path)) return 'a path pattern cannot contain a query or fragment (the query is not matched)'
  const normalized = normalizeRequestPath(path)
  if ('problem' in normalized) return normalized.problem.replace('the request path', 'a path pattern').replace('in request paths', 'in path patterns')
  // "/v1/..*" would normalize to "/*", a far wider prefix than written: a prefix must not end in a dot segment.
  if (star !== -1 && /\/\.{1,2}$/.test(path)) return 'a prefix cannot end in a "." or ".." segment'
  if (normalized.path !== path) return `paths are compared normalized: write ${JSON.stringify(normalized.path + (star === -1 ? '' : '*'))}`
  return star === -1 ? { exact: path } : { prefix: path }
}

export function matchesPathPattern (pattern: PathPattern, path: string): boolean {
  return 'exact' in pattern ? path === pattern.exact : path.startsWith(pattern.prefix)
}

/** Whether every path `inner` matches is matched by `outer`. */
export function pathPatternCovers (outer: PathPattern, inner: PathPattern): boolean {
  if ('exact' in outer) return 'exact' in inner && inner.exact === outer.exact
  return ('exact' in inner ? inner.exact : inner.prefix).startsWith(outer.prefix)
}
