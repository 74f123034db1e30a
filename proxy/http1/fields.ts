/**
 * Field lines (RFC 9112 §5) of a head or a trailer section: `name: value`, the name a token with no whitespace
 * before the colon, the value without its surrounding SP/HTAB and free of control characters. An obs-fold, a bare
 * CR or LF, and NUL/VT/FF/DEL all fail here.
 */
import { FIELD_VALUE, TOKEN, trimOws } from './syntax'

/** A field line as sent: `name` keeps its spelling, `lower` is for comparisons, `value` has no surrounding whitespace. */
export interface HeaderLine { readonly name: string, readonly lower: string, readonly value: string }

/**
 * Fields llhttp reads with a grammar of its own, in which HTAB is whitespace only before the value: `5\t` is an
 * invalid Content-Length, `chunked\t` is another coding than chunked, `keep-alive\t` and `upgrade\t` are other
 * Connection options. RFC 9110 §5.6.3 lets a tab stand wherever a space does; these fields refuse one after the
 * start of the value, so that the sidecar and llhttp never frame, keep or upgrade a message differently.
 */
const NO_TAB_IN_VALUE: ReadonlySet<string> = new Set(['content-length', 'transfer-encoding', 'connection', 'proxy-connection'])

/** The field lines of `lines`, or why one is malformed. */
export function parseFieldLines (lines: readonly string[], from: number): HeaderLine[] | string {
  const fields: HeaderLine[] = []
  for (let i = from; i < lines.length; i++) {
    const line = lines[i]
    const colon = line.indexOf(':')
    const name = colon === -1 ? '' : line.slice(0, colon)
    if (!TOKEN.test(name)) {
      return colon === -1 || line.startsWith(' ') || line.startsWith('\t') ? `malformed field line ${JSON.stringify(line.slice(0, 80))}` : `malformed field name ${JSON.stringify(name.slice(0, 80))}`
    }
    const value = trimOws(line.slice(colon + 1))
    if (!FIELD_VALUE.test(value)) return `field ${name} has a control character in its value`
    const lower = name.toLowerCase()
    if (NO_TAB_IN_VALUE.has(lower) && value !== '' && line.includes('\t', line.indexOf(value, colon + 1))) return `field ${name} has a tab in or after its value`
    fields.push({ name, lower, value })
  }
  return fields
}

/**
 * The comma-separated elements of every line of field `lower`, lowercased; empty elements (`a,,b`, a trailing
 * comma) are kept as '' so that framing can refuse them where other fields ignore them (RFC 9110 §5.6.1).
 */
export function headerElements (headers: readonly HeaderLine[], lower: string): string[] {
  const found: string[] = []
  for (const header of headers) {
    if (header.lower !== lower) continue
    for (const element of header.value.split(',')) found.push(trimOws(element).toLowerCase())
  }
  return found
}

/** No elements: shared, since most messages have no Connection, Upgrade or Proxy-Connection field. */
export const NO_TOKENS: readonly string[] = Object.freeze([])

/** The non-empty elements of field `lower`, lowercased (Connection options, Upgrade protocols). */
export function headerTokens (headers: readonly HeaderLine[], lower: string): readonly string[] {
  let found: string[] | undefined
  for (const header of headers) {
    if (header.lower !== lower) continue
    for (const element of header.value.split(',')) {
      const token = trimOws(element).toLowerCase()
      if (token !== '') (found ??= []).push(token)
    }
  }
  return found ?? NO_TOKENS
}

/**
 * Whether the sender closes the connection after the message (RFC 9112 §9.3): HTTP/1.0 unless Connection lists
 * keep-alive, HTTP/1.1 when it lists close. llhttp also reads the obsolete Proxy-Connection as Connection, so its
 * `close` closes too (its keep-alive does not keep an HTTP/1.0 connection here: the stricter reading).
 */
export function closes (minor: 0 | 1, connectionOptions: readonly string[], proxyConnectionOptions: readonly string[]): boolean {
  return (minor === 0 ? !connectionOptions.includes('keep-alive') : connectionOptions.includes('close')) || proxyConnectionOptions.includes('close')
}
