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
function framingLine (framing: Framing): string {
  if (framing.kind === 'length') return `content-length: ${framing.length}\r\n`
  return framing.kind === 'chunked' ? 'transfer-encoding: chunked\r\n' : ''
}

/** The lines of `fields` (the sidecar's own), in order. */
function fieldLines (fields: readonly Field[]): string {
  let lines = ''
  for (const [name, value] of fields) lines += `${name}: ${value}\r\n`
  return lines
}

/**
 * The sender's end-to-end field lines, in order: not hop-by-hop, not named by its Connection field, not `drop`ped.
 * One pass and one string (a head is written for every request and response).
 */
function keptLines (headers: readonly HeaderLine[], connectionOptions: readonly string[], drop: (lower: string) => boolean): string {
  let lines = ''
  for (const header of headers) {
    if (HOP_BY_HOP.has(header.lower) || drop(header.lower) || (connectionOptions.length > 0 && connectionOptions.includes(header.lower))) continue
    lines += `${header.name}: ${header.value}\r\n`
  }
  return lines
}

/** The length fields as sent: what a HEAD or 304 response says of the body a GET would have got. */
function lengthLines (headers: readonly HeaderLine[]): string {
  let lines = ''
  for (const header of headers) if (header.lower === 'content-length' || header.lower === 'transfer-encoding') lines += `${header.name}: ${header.value}\r\n`
  return lines
}

const KEEP_ALL = (): boolean => false
const NO_OPTIONS: readonly string[] = []
const UPGRADE = (protocol: string): string => `connection: upgrade\r\nupgrade: ${protocol}\r\n`

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
  const host = replaceHost ? `host: ${head.authority ?? rewrite.defaultHost}\r\n` : ''
  const kept = keptLines(head.headers, head.connectionOptions, replaceHost ? lower => lower === 'host' || rewrite.drop(lower) : rewrite.drop)
  const upgrade = rewrite.upgrade === undefined ? '' : UPGRADE(rewrite.upgrade)
  return Buffer.from(`${head.method} ${head.forwardTarget} HTTP/1.1\r\n${fieldLines(rewrite.first)}${host}${kept}${framingLine(head.framing)}${upgrade}\r\n`, 'latin1')
}

/**
 * A response as the sidecar sends it to its client (`clientMinor`): framed as `sent` says (the caller chooses:
 * chunked becomes close-delimited for an HTTP/1.0 client), and `close` announced. HEAD and 304 responses keep
 * the length fields that describe the body a GET would have got.
 */
export function responseHeadBytes (head: ResponseHead, sent: Framing, clientMinor: 0 | 1, close: boolean, upgrade: string | undefined): Buffer {
  const bodiless = head.framing.kind === 'none'
  const describes = bodiless && head.status !== 204 && head.status >= 200
  const described = describes ? lengthLines(head.headers) : ''
  const connection = upgrade !== undefined ? UPGRADE(upgrade) : close ? 'connection: close\r\n' : clientMinor === 0 ? 'connection: keep-alive\r\n' : ''
  return Buffer.from(`HTTP/1.1 ${head.status} ${head.reason}\r\n${keptLines(head.headers, head.connectionOptions, KEEP_ALL)}${described}${bodiless ? '' : framingLine(sent)}${connection}\r\n`, 'latin1')
}

/** Trailer fields never forwarded: framing and routing fields (RFC 9110 §6.5.1), and those the sidecar sets. */
export function trailerBytes (trailers: readonly HeaderLine[], drop: (lower: string) => boolean): Buffer {
  return Buffer.from(`0\r\n${keptLines(trailers, NO_OPTIONS, lower => lower === 'host' || drop(lower))}\r\n`, 'latin1')
}
