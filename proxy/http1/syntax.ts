/**
 * The character rules of HTTP/1.1 messages (RFC 9110 §5.5–§5.6, RFC 9112 §2–§5) as the head reader applies them.
 * Only SP and HTAB are whitespace (RFC 9110 §5.6.3): JavaScript's trim() also strips VT, FF and NBSP, which lets
 * `chunked\v` pass as `chunked` — never use it on a field.
 */
import { METHODS } from 'node:http'

/** A token (RFC 9110 §5.6.2): field names, methods, transfer codings, Connection options. */
export const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

/** A field value after its leading and trailing whitespace: visible ASCII, obs-text, SP and HTAB inside. */
export const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/

/** The methods llhttp (Node's own parser) knows; it refuses any other, so the sidecar does too (501). */
export const KNOWN_METHODS: ReadonlySet<string> = new Set(METHODS)

/** `text` without leading and trailing SP and HTAB (optional whitespace, OWS). */
export function trimOws (text: string): string {
  let start = 0
  let end = text.length
  while (start < end && isOws(text.charCodeAt(start))) start++
  while (end > start && isOws(text.charCodeAt(end - 1))) end--
  return start === 0 && end === text.length ? text : text.slice(start, end)
}

function isOws (code: number): boolean {
  return code === 0x20 || code === 0x09
}
