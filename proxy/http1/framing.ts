/**
 * How a message body is delimited (RFC 9112 §6): from Transfer-Encoding and Content-Length, refusing every
 * combination two parsers could read differently. Stricter than llhttp in strict mode, never laxer: two
 * Content-Length lines (even equal), a list, a length with Transfer-Encoding, `chunked` twice or not last, and
 * Transfer-Encoding in HTTP/1.0 are all refused; a coding other than chunked is not understood (501).
 */
import type { HeaderLine } from './fields'
import { headerElements } from './fields'
import { TOKEN } from './syntax'

export type Framing =
  | { readonly kind: 'none' }
  | { readonly kind: 'length', readonly length: number }
  | { readonly kind: 'chunked' }
  /** A response body that runs until the server closes the connection. */
  | { readonly kind: 'close' }

export const NO_BODY: Framing = Object.freeze({ kind: 'none' })
export const CHUNKED: Framing = Object.freeze({ kind: 'chunked' })
export const UNTIL_CLOSE: Framing = Object.freeze({ kind: 'close' })

/** Why framing cannot be trusted; 501: a transfer coding the sidecar does not implement. */
export interface FramingProblem { readonly status: 400 | 501, readonly problem: string }

/** The framing the headers state: `undefined` when they state none (the caller applies the message's default). */
export function declaredFraming (headers: readonly HeaderLine[], minor: 0 | 1): Framing | FramingProblem | undefined {
  let length: Framing | undefined
  let lengthLines = 0
  let codingLines = 0
  for (const header of headers) {
    if (header.lower === 'content-length') {
      lengthLines++
      if (!/^[0-9]{1,15}$/.test(header.value)) return { status: 400, problem: `Content-Length ${JSON.stringify(header.value.slice(0, 40))} is not one number` }
      length = { kind: 'length', length: Number(header.value) }
    } else if (header.lower === 'transfer-encoding') {
      codingLines++
    }
  }
  if (lengthLines > 1) return { status: 400, problem: 'more than one Content-Length line' }
  if (codingLines === 0) return length
  if (length !== undefined) return { status: 400, problem: 'both Content-Length and Transfer-Encoding: one message, two framings' }
  if (minor === 0) return { status: 400, problem: 'Transfer-Encoding in an HTTP/1.0 message (RFC 9112 §6.1)' }
  const codings = headerElements(headers, 'transfer-encoding')
  if (codings.some(coding => !TOKEN.test(coding))) return { status: 400, problem: 'Transfer-Encoding is not a list of codings' }
  const chunked = codings.filter(coding => coding === 'chunked').length
  if (chunked > 1) return { status: 400, problem: 'chunked applied more than once (RFC 9112 §6.1)' }
  if (chunked === 1 && codings[codings.length - 1] !== 'chunked') return { status: 400, problem: 'chunked must be the last transfer coding' }
  if (codings.length > 1 || chunked === 0) return { status: 501, problem: `transfer coding ${JSON.stringify(codings.find(coding => coding !== 'chunked'))} is not supported` }
  return CHUNKED
}
