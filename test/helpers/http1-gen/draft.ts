/**
 * A message as the generator builds it before it becomes bytes: its start line, its field lines as they will be
 * sent, its body already framed. Text is latin1 (one character a byte), so any byte can be placed anywhere.
 */
import type { MessageKind } from '../http1-stream-result'
import type { Random } from './random'

export interface Draft {
  readonly kind: MessageKind
  start: string
  fields: string[]
  /** The body as sent: framed (chunked) or not. */
  body: string
  /** Responses: the method of the request answered; requests: their own. */
  method: string
  /** Nothing may follow the message as HTTP: it closes, switches protocols or is delimited by the close. */
  last: boolean
  /** Bytes after the message in another protocol (after an upgrade). */
  tail: string
  /** What ends each line of the head. */
  eol: string
}

export function draft (kind: MessageKind, start: string, method: string): Draft {
  return { kind, start, fields: [], body: '', method, last: false, tail: '', eol: '\r\n' }
}

export function serialize (message: Draft): string {
  const { start, fields, eol, body, tail } = message
  return `${start}${eol}${fields.map(field => field + eol).join('')}${eol}${body}${tail}`
}

/** Token characters (RFC 9110 §5.6.2). */
export const TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
const VCHAR = Array.from({ length: 94 }, (_, i) => String.fromCharCode(0x21 + i)).join('')
const OBS_TEXT = Array.from({ length: 128 }, (_, i) => String.fromCharCode(0x80 + i)).join('')
const ANY_BYTE = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join('')

const OWS: ReadonlyArray<readonly [string, number]> = [['', 4], [' ', 8], ['  ', 1], ['\t', 1], [' \t ', 1]]
const AFTER_VALUE: ReadonlyArray<readonly [string, number]> = [['', 8], [' ', 1], ['\t', 1]]

/** Optional whitespace as senders write it. */
export function ows (r: Random): string {
  return r.weighted(OWS)
}

/** Fields after whose value the sidecar takes no tab (llhttp reads them with a grammar of its own). */
const NO_TAB_AFTER = /^(?:content-length|transfer-encoding|(?:proxy-)?connection)$/i

/** A field line `name: value` with whitespace of the sender's choosing around the value. */
export function field (r: Random, name: string, value: string): string {
  const after = value === '' ? '' : NO_TAB_AFTER.test(name) ? r.pick(['', ' ']) : r.weighted(AFTER_VALUE)
  return `${name}:${value === '' ? r.pick(['', ' ']) : ows(r)}${value}${after}`
}

const NAMES = ['Accept', 'Accept-Encoding', 'Accept-Language', 'User-Agent', 'Cache-Control', 'Cookie', 'X-Request-Id',
  'Authorization', 'If-None-Match', 'Referer', 'Traceparent', 'Content-Type', 'Date', 'Server', 'ETag', 'Vary', 'Keep-Alive']

/** A field value: tokens, lists, quoted strings, text with spaces, obs-text, or nothing. */
export function fieldValue (r: Random): string {
  switch (r.int(7)) {
    case 0: return r.string(r.between(1, 12), TCHAR)
    case 1: return Array.from({ length: r.between(2, 4) }, () => r.string(r.between(1, 6), TCHAR)).join(r.pick([', ', ',', ' , ']))
    case 2: return `"${r.string(r.between(0, 10), TCHAR + ' ,;=')}"`
    case 3: return `${r.string(r.between(1, 8), VCHAR)}${r.pick([' ', '\t', '  '])}${r.string(r.between(1, 8), VCHAR)}`
    case 4: return r.string(r.between(1, 6), VCHAR + OBS_TEXT)
    case 5: return r.chance(0.5) ? '' : r.string(r.between(100, 300), VCHAR)
    default: return r.string(r.between(1, 30), VCHAR)
  }
}

/** A field that says nothing about framing, routing or the connection. */
export function plainField (r: Random): string {
  const name = r.chance(0.8) ? r.spelling(r.pick(NAMES)) : `X-${r.string(r.between(1, 10), TCHAR)}`
  return field(r, name, fieldValue(r))
}

/** `count` bytes of any value (a body carries anything). */
export function bodyData (r: Random, count: number): string {
  return r.string(count, ANY_BYTE)
}

const FRAMING = /^(?:content-length|transfer-encoding)[ \t]*:/i

export function removeFraming (message: Draft): void {
  message.fields = message.fields.filter(line => !FRAMING.test(line))
}

/** Puts `line` among the fields, at a random place. */
export function insertField (r: Random, message: Draft, line: string): void {
  message.fields.splice(r.int(message.fields.length + 1), 0, line)
}

/** The body `data`, sent with `Content-Length` (`value` as written, its length by default). */
export function setLength (r: Random, message: Draft, data: string, value = String(data.length)): void {
  removeFraming(message)
  insertField(r, message, field(r, r.spelling('Content-Length'), value))
  message.body = data
}

export interface ChunkOptions {
  /** The size line of each chunk, from its size (hex by default). */
  readonly size?: (size: number) => string
  /** What ends each chunk size line (CRLF by default). */
  readonly sizeEnd?: string
  /** What ends each chunk's data (CRLF by default). */
  readonly dataEnd?: string
  readonly trailers?: readonly string[]
  readonly lastChunk?: string
}

/** The body `data` framed as chunks of random sizes, with extensions and trailers now and then. */
export function chunked (r: Random, data: string, options: ChunkOptions = {}): string {
  let text = ''
  for (let at = 0; at < data.length;) {
    const size = Math.min(data.length - at, r.between(1, 40))
    text += `${options.size?.(size) ?? chunkSize(r, size)}${r.chance(0.15) ? extension(r) : ''}${options.sizeEnd ?? '\r\n'}${data.slice(at, at + size)}${options.dataEnd ?? '\r\n'}`
    at += size
  }
  const trailers = options.trailers ?? (r.chance(0.2) ? Array.from({ length: r.between(1, 2) }, () => plainField(r)) : [])
  return `${text}${options.lastChunk ?? `${r.weighted([['0', 8], ['00', 1], ['000', 1]])}${r.chance(0.1) ? extension(r) : ''}`}\r\n${trailers.map(line => `${line}\r\n`).join('')}\r\n`
}

function chunkSize (r: Random, size: number): string {
  const hex = size.toString(16)
  return `${r.chance(0.1) ? '0'.repeat(r.between(1, 3)) : ''}${r.chance(0.5) ? hex : hex.toUpperCase()}`
}

/** A chunk extension (RFC 9112 §7.1.1): `;name`, `;name=token` or `;name="quoted"`. */
export function extension (r: Random): string {
  const name = r.string(r.between(1, 6), TCHAR)
  switch (r.int(3)) {
    case 0: return `;${name}`
    case 1: return `;${name}=${r.string(r.between(1, 6), TCHAR)}`
    default: return `;${name}="${r.string(r.between(0, 6), TCHAR + ' ;=')}${r.chance(0.3) ? '\\"' : ''}"`
  }
}

/** The body `data`, sent chunked. */
export function setChunked (r: Random, message: Draft, data: string, options: ChunkOptions = {}, coding = r.spelling('chunked')): void {
  removeFraming(message)
  insertField(r, message, field(r, r.spelling('Transfer-Encoding'), coding))
  message.body = chunked(r, data, options)
}
