/**
 * Heads written out again from their parsed form (invariant 8: never relay framing). The sidecar writes the
 * version, the framing fields and the connection handling itself; of the sender's fields it keeps the end-to-end
 * ones in their order, never the hop-by-hop ones (RFC 9110 §7.6.1) nor those its Connection field names.
 */
import type { HeaderLine } from './fields'
import type { Framing } from './framing'
import type { RequestHead } from './request-head'
import type { ResponseHead } from './response-head'

export type Field = readonly [name: string, value: string]

/** Never forwarded as received: the sidecar writes its own framing, Connection and Upgrade. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'http2-settings', 'content-length'])

/** The framing field for `framing`, as the sidecar sends the body (chunked bodies are re-chunked). */
function framingFields (framing: Framing): Field[] {
  if (framing.kind === 'length') return [['content-length', String(framing.length)]]
  return framing.kind === 'chunked' ? [['transfer-encoding', 'chunked']] : []
}

function forwardable (headers: readonly HeaderLine[], connectionOptions: readonly string[], drop: (lower: string) => boolean): HeaderLine[] {
  return headers.filter(h => !HOP_BY_HOP.has(h.lower) && !drop(h.lower) && (connectionOptions.length === 0 || !connectionOptions.includes(h.lower)))
}

function text (first: string, fields: ReadonlyArray<Field | HeaderLine>): Buffer {
  let head = `${first}\r\n`
  for (const field of fields) head += 'name' in field ? `${field.name}: ${field.value}\r\n` : `${field[0]}: ${field[1]}\r\n`
  return Buffer.from(`${head}\r\n`, 'latin1')
}

export interface RequestRewrite {
  /** Fields the sidecar sets, written first (identity: an app that keeps only the first N fields still sees them). */
  readonly first: readonly Field[]
  /** Fields of the client's to remove besides the hop-by-hop ones (lowercased names). */
  readonly drop: (lower: string) => boolean
  /** The protocol of an allowed upgrade, forwarded with `Connection: upgrade`; undefined for none. */
  readonly upgrade: string | undefined
  /** Host to send when the client sent none (HTTP/1.0): the destination's authority. */
  readonly defaultHost: string
}

/**
 * A request as the sidecar sends it upstream, always as HTTP/1.1 (RFC 9110 §6.2: its own version): origin-form
 * target, and for an absolute-form target the Host its authority names (RFC 9112 §3.2.2).
 */
export function requestHeadBytes (head: RequestHead, rewrite: RequestRewrite): Buffer {
  const replaceHost = head.form === 'absolute' || head.authority === undefined
  const kept = forwardable(head.headers, head.connectionOptions, lower => rewrite.drop(lower) || (replaceHost && lower === 'host'))
  const host: Field[] = replaceHost ? [['host', head.authority ?? rewrite.defaultHost]] : []
  const upgrade: Field[] = rewrite.upgrade === undefined ? [] : [['connection', 'upgrade'], ['upgrade', rewrite.upgrade]]
  return text(`${head.method} ${head.forwardTarget} HTTP/1.1`, [...rewrite.first, ...host, ...kept, ...framingFields(head.framing), ...upgrade])
}

/**
 * A response as the sidecar sends it to its client (`clientMinor`): framed as `sent` says (the caller chooses:
 * chunked becomes close-delimited for an HTTP/1.0 client), and `close` announced. HEAD and 304 responses keep
 * the length fields that describe the body a GET would have got.
 */
export function responseHeadBytes (head: ResponseHead, sent: Framing, clientMinor: 0 | 1, close: boolean, upgrade: string | undefined): Buffer {
  const bodiless = head.framing.kind === 'none'
  const describes = bodiless && head.status !== 204 && head.status >= 200
  const kept = forwardable(head.headers, head.connectionOptions, () => false)
  const described = describes ? head.headers.filter(h => h.lower === 'content-length' || h.lower === 'transfer-encoding') : []
  const connection: Field[] = upgrade !== undefined
    ? [['connection', 'upgrade'], ['upgrade', upgrade]]
    : close ? [['connection', 'close']] : clientMinor === 0 ? [['connection', 'keep-alive']] : []
  return text(`HTTP/1.1 ${head.status} ${head.reason}`, [...kept, ...described, ...(bodiless ? [] : framingFields(sent)), ...connection])
}

/** Trailer fields never forwarded: framing and routing fields (RFC 9110 §6.5.1), and those the sidecar sets. */
export function trailerBytes (trailers: readonly HeaderLine[], drop: (lower: string) => boolean): Buffer {
  let section = '0\r\n'
  for (const field of trailers) if (!HOP_BY_HOP.has(field.lower) && field.lower !== 'host' && !drop(field.lower)) section += `${field.name}: ${field.value}\r\n`
  return Buffer.from(`${section}\r\n`, 'latin1')
}

const CRLF = Buffer.from('\r\n', 'latin1')

/** The size line of a chunk of `length` bytes, and the CRLF after its data. */
export function chunkFraming (length: number): { readonly size: Buffer, readonly end: Buffer } {
  return { size: Buffer.from(`${length.toString(16)}\r\n`, 'latin1'), end: CRLF }
}
