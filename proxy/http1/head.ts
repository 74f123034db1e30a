/**
 * HTTP/1.1 message heads, read straight from socket bytes for the HTTP-mode data path: the request line or status
 * line, the header lines as sent, and what framing and connection handling follow from them (RFC 9112 §6 and §9).
 * Strict where laxness lets requests be smuggled: Content-Length with Transfer-Encoding, conflicting lengths, a
 * final coding other than chunked, folded or malformed lines are all refused.
 */

/** Bytes a head may take before the request is refused with 431 (Node's http server allows 16 KiB). */
export const MAX_HEAD_BYTES = 64 * 1024

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
// Visible ASCII, obs-text, space and tab; no other control characters (and no CR or LF inside a value).
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/
const REQUEST_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([\x21-\x7e\x80-\xff]+) HTTP\/1\.([01])$/
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: [\t\x20-\x7e\x80-\xff]*)?$/

/** A header line as sent: `name` keeps its spelling, `lower` is for comparisons. */
export interface HeaderLine { readonly name: string, readonly lower: string, readonly value: string }

/** How a message body is delimited. */
export type Framing = { readonly kind: 'none' } | { readonly kind: 'length', readonly length: number } | { readonly kind: 'chunked' } | { readonly kind: 'close' }

interface HeadCommon {
  readonly minor: 0 | 1
  readonly headers: readonly HeaderLine[]
  /** Bytes of the head in the buffer, the blank line included. */
  readonly size: number
  readonly framing: Framing
  /** The sender wants the connection closed after this message. */
  readonly close: boolean
}

export interface RequestHead extends HeadCommon {
  readonly method: string
  readonly target: string
  /** `Connection: upgrade` with an `Upgrade` header: a WebSocket or another protocol switch. */
  readonly upgrade: boolean
}

export interface ResponseHead extends HeadCommon {
  readonly status: number
  /** How long the server keeps an idle connection open, from `Keep-Alive: timeout=<s>`, if it says. */
  readonly keepAliveMs: number | undefined
}

/** Why a head cannot be used; `status` is what to answer a client with. */
export interface HeadProblem { readonly status: 400 | 431 | 502, readonly problem: string }

const NONE: Framing = Object.freeze({ kind: 'none' })
const CHUNKED: Framing = Object.freeze({ kind: 'chunked' })
const CLOSE: Framing = Object.freeze({ kind: 'close' })

/** Splits the head at `start` into its first line and header lines; undefined while the blank line has not arrived. */
function splitHead (buffer: Buffer, start: number, status: HeadProblem['status']): { first: string, headers: HeaderLine[], size: number } | HeadProblem | undefined {
  const end = buffer.indexOf('\r\n\r\n', start, 'latin1')
  if (end === -1) return buffer.length - start > MAX_HEAD_BYTES ? { status: status === 400 ? 431 : status, problem: `the message head is larger than ${MAX_HEAD_BYTES} bytes` } : undefined
  if (end - start > MAX_HEAD_BYTES) return { status: status === 400 ? 431 : status, problem: `the message head is larger than ${MAX_HEAD_BYTES} bytes` }
  const lines = buffer.toString('latin1', start, end).split('\r\n')
  const headers: HeaderLine[] = []
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]
    const colon = line.indexOf(':')
    const name = colon === -1 ? '' : line.slice(0, colon)
    if (!TOKEN.test(name)) return { status, problem: colon === -1 || line.startsWith(' ') || line.startsWith('\t') ? `malformed header line ${JSON.stringify(line.slice(0, 80))}` : `malformed header name ${JSON.stringify(name.slice(0, 80))}` }
    const value = line.slice(colon + 1).trim()
    if (!FIELD_VALUE.test(value)) return { status, problem: `header ${name} has a control character in its value` }
    headers.push({ name, lower: name.toLowerCase(), value })
  }
  return { first: lines[0], headers, size: end + 4 - start }
}

/** Comma-separated tokens of every line of header `lower`, lowercased. */
function tokens (headers: readonly HeaderLine[], lower: string): string[] {
  const found: string[] = []
  for (const header of headers) {
    if (header.lower !== lower) continue
    for (const token of header.value.split(',')) {
      const trimmed = token.trim().toLowerCase()
      if (trimmed !== '') found.push(trimmed)
    }
  }
  return found
}

/** The body framing the length headers give (before the rules that depend on method and status), or the problem. */
function lengthFraming (headers: readonly HeaderLine[], status: HeadProblem['status']): Framing | HeadProblem | undefined {
  const codings = tokens(headers, 'transfer-encoding')
  let length: string | undefined
  for (const header of headers) {
    if (header.lower !== 'content-length') continue
    for (const value of header.value.split(',')) {
      const trimmed = value.trim()
      if (!/^\d{1,15}$/.test(trimmed)) return { status, problem: `Content-Length ${JSON.stringify(header.value.slice(0, 40))} is not a number` }
      if (length !== undefined && length !== trimmed) return { status, problem: 'conflicting Content-Length values' }
      length = trimmed
    }
  }
  if (codings.length > 0) {
    if (length !== undefined) return { status, problem: 'both Content-Length and Transfer-Encoding: one message, two framings' }
    return codings[codings.length - 1] === 'chunked' ? CHUNKED : undefined // undefined: not chunked last, the caller decides
  }
  return length === undefined ? NONE : { kind: 'length', length: Number(length) }
}

function wantsClose (minor: 0 | 1, headers: readonly HeaderLine[]): boolean {
  const connection = tokens(headers, 'connection')
  return minor === 0 ? !connection.includes('keep-alive') : connection.includes('close')
}

/** A request head at `start`, undefined while incomplete. */
export function parseRequestHead (buffer: Buffer, start = 0): RequestHead | HeadProblem | undefined {
  const split = splitHead(buffer, start, 400)
  if (split === undefined || 'problem' in split) return split
  const line = REQUEST_LINE.exec(split.first)
  if (line === null) return { status: 400, problem: `malformed request line ${JSON.stringify(split.first.slice(0, 80))}` }
  const framing = lengthFraming(split.headers, 400)
  if (framing === undefined) return { status: 400, problem: 'a request\'s last transfer coding must be chunked' }
  if ('problem' in framing) return framing
  const minor = line[3] === '0' ? 0 : 1
  if (minor === 1 && !split.headers.some(h => h.lower === 'host')) return { status: 400, problem: 'an HTTP/1.1 request needs a Host header' }
  const upgrade = tokens(split.headers, 'connection').includes('upgrade') && split.headers.some(h => h.lower === 'upgrade')
  return { method: line[1], target: line[2], minor, headers: split.headers, size: split.size, framing, close: wantsClose(minor, split.headers), upgrade }
}

/** A response head at `start` to a request with `method`, undefined while incomplete. */
export function parseResponseHead (buffer: Buffer, start: number, method: string): ResponseHead | HeadProblem | undefined {
  const split = splitHead(buffer, start, 502)
  if (split === undefined || 'problem' in split) return split
  const line = STATUS_LINE.exec(split.first)
  if (line === null) return { status: 502, problem: `malformed status line ${JSON.stringify(split.first.slice(0, 80))}` }
  const status = Number(line[2])
  const minor = line[1] === '0' ? 0 : 1
  let framing: Framing | HeadProblem
  if (method === 'HEAD' || status < 200 || status === 204 || status === 304) framing = NONE
  else framing = lengthFraming(split.headers, 502) ?? CLOSE
  if ('problem' in framing) return framing
  if (framing.kind === 'none' && method !== 'HEAD' && status >= 200 && status !== 204 && status !== 304) framing = CLOSE // no length: the body runs to the close
  const close = framing.kind === 'close' || wantsClose(minor, split.headers)
  const timeout = /(?:^|[\s,])timeout=(\d{1,6})\b/i.exec(split.headers.find(h => h.lower === 'keep-alive')?.value ?? '')
  return { status, minor, headers: split.headers, size: split.size, framing, close, keepAliveMs: timeout === null ? undefined : Number(timeout[1]) * 1000 }
}

/** A head written out again: `first` line, the kept header lines, then `extra` lines. */
export function serializeHead (first: string, headers: readonly HeaderLine[], keep: (header: HeaderLine) => boolean, extra: ReadonlyArray<readonly [string, string]>): string {
  let text = `${first}\r\n`
  for (const header of headers) if (keep(header)) text += `${header.name}: ${header.value}\r\n`
  for (const [name, value] of extra) text += `${name}: ${value}\r\n`
  return `${text}\r\n`
}

/** Hop-by-hop headers (RFC 9110 §7.6.1): never forwarded as received; the proxy writes its own Connection. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'upgrade'])

/**
 * A request head as a proxy sends it on: hop-by-hop headers (and those the Connection header names) and `drop`
 * removed, `extra` added. The upstream connection is kept alive whatever the client asked (the sidecar closes the
 * client's side itself); an upgrade keeps its Upgrade header.
 */
export function proxiedRequestHead (head: RequestHead, drop: (lower: string) => boolean, extra: ReadonlyArray<readonly [string, string]>): string {
  const named = tokens(head.headers, 'connection')
  const keep = (header: HeaderLine): boolean => {
    if (header.lower === 'upgrade') return head.upgrade
    return !HOP_BY_HOP.has(header.lower) && !drop(header.lower) && (named.length === 0 || !named.includes(header.lower))
  }
  const connection: Array<readonly [string, string]> = head.upgrade ? [['connection', 'upgrade']] : head.minor === 0 ? [['connection', 'keep-alive']] : []
  return serializeHead(`${head.method} ${head.target} HTTP/1.${head.minor}`, head.headers, keep, [...connection, ...extra])
}
