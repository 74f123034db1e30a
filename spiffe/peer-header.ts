/**
 * The caller's identity as a platform service behind a Chaperone sidecar sees it: the X-Forwarded-Client-Cert header
 * the sidecar sets after verifying the peer's X509-SVID (in Envoy's XFCC format, so services written for Envoy or
 * Istio read it unchanged); a JWT-SVID in `Authorization: Bearer` is bearer-header.ts's (kept apart so the sidecar,
 * which writes this header, does not load the JWT library).
 */
import type { IncomingHttpHeaders } from 'node:http'
import { ChaperoneError } from './errors'
import { parseSpiffeId } from './id'
import type { SpiffeId } from './id'

export type PeerHeaderErrorCode = 'ERR_XFCC_INVALID' | 'ERR_BEARER_TOKEN_MISSING'

export class PeerHeaderError extends ChaperoneError<PeerHeaderErrorCode> {}

/** The header, as Node names it (lowercase). */
export const XFCC_HEADER = 'x-forwarded-client-cert'

/** One XFCC element: what one proxy says about the client certificate it verified. */
export interface XfccElement {
  /** The URI SAN of the proxy's own certificate (for a Chaperone sidecar, its SPIFFE ID). */
  by?: string
  /** Hex SHA-256 of the client's leaf certificate (DER). */
  hash?: string
  /** The client certificate's URI SAN: its SPIFFE ID. */
  uri?: string
  cert?: string
  chain?: string
  subject?: string
  /** Envoy repeats DNS once per DNS SAN. */
  dns?: string[]
}

/** The keys Envoy defines (case-insensitive); an element with any other key is refused rather than half-read. */
const KEYS = new Set(['by', 'hash', 'uri', 'cert', 'chain', 'subject', 'dns'])

/** Envoy: a value holding `,` `;` `=` or `"` is double-quoted. We also escape `\` inside quotes so every value round-trips. */
const NEEDS_QUOTES = /[,;="\\]/

/** Something that carries request headers: Node's IncomingMessage, or a plain `{ headers }`. */
export interface RequestHeaders {
  headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>
  /** Node's per-occurrence view, used to see a header sent more than once (Node joins or drops repeats in `headers`). */
  headersDistinct?: Record<string, string[] | undefined>
}

function invalid (why: string, cause?: unknown): PeerHeaderError {
  return new PeerHeaderError('ERR_XFCC_INVALID', `invalid ${XFCC_HEADER} header: ${why}`, { cause })
}

function quote (value: string): string {
  return NEEDS_QUOTES.test(value) ? `"${value.replace(/["\\]/g, '\\$&')}"` : value
}

/** The XFCC element a sidecar appends: `By=<by>;Hash=<hash>;URI=<uri>`, values quoted where Envoy's syntax needs it. */
export function formatXfcc (element: { by: string, hash: string, uri: string }): string {
  return `By=${quote(element.by)};Hash=${quote(element.hash)};URI=${quote(element.uri)}`
}

/**
 * Reads an XFCC header (Envoy's syntax: elements separated by `,`, key=value pairs by `;`, values optionally in
 * double quotes with `\"` for a quote). Anything else, including stray whitespace, is ERR_XFCC_INVALID.
 */
export function parseXfcc (header: string): XfccElement[] {
  if (typeof header !== 'string' || header === '') throw invalid('empty')
  const elements: XfccElement[] = []
  let element: XfccElement = {}
  let pos = 0
  for (;;) {
    const eq = header.indexOf('=', pos)
    const key = header.slice(pos, eq === -1 ? undefined : eq)
    if (eq === -1 || !/^[A-Za-z]+$/.test(key)) throw invalid(`expected key=value at offset ${pos}`)
    const { value, end } = readValue(header, eq + 1)
    addPair(element, key, value)
    pos = end + 1
    if (end === header.length || header[end] === ',') {
      elements.push(element)
      element = {}
      if (end === header.length) return elements
    }
  }
}

/** The value starting at `start`, and where it ends: at the header's end, or at the `;` or `,` that follows it. */
function readValue (header: string, start: number): { value: string, end: number } {
  if (header[start] !== '"') {
    let end = start
    while (end < header.length && header[end] !== ';' && header[end] !== ',') end++
    const value = header.slice(start, end)
    if (value.includes('"')) throw invalid(`a quote inside an unquoted value at offset ${start}`)
    return { value, end }
  }
  let value = ''
  for (let i = start + 1; i < header.length; i++) {
    const c = header[i]
    if (c === '\\' && i + 1 < header.length) {
      value += header[++i]
    } else if (c === '"') {
      const end = i + 1
      if (end < header.length && header[end] !== ';' && header[end] !== ',') throw invalid(`text after a quoted value at offset ${end}`)
      return { value, end }
    } else {
      value += c
    }
  }
  throw invalid(`unterminated quoted value at offset ${start}`)
}

function addPair (element: XfccElement, key: string, value: string): void {
  const name = key.toLowerCase()
  if (!KEYS.has(name)) throw invalid(`unknown key ${JSON.stringify(key)}`)
  if (name === 'dns') {
    (element.dns ??= []).push(value)
    return
  }
  const field = name as Exclude<keyof XfccElement, 'dns'>
  if (element[field] !== undefined) throw invalid(`${key} appears twice in one element`)
  element[field] = value
}

/** The values of one header, however often it was sent; the name in lowercase. */
export function headerValues (req: RequestHeaders, name: string): string[] {
  const distinct = req.headersDistinct?.[name]
  if (distinct !== undefined) return distinct
  return Object.entries(req.headers)
    .filter(([key]) => key.toLowerCase() === name)
    .flatMap(([, value]) => value ?? [])
}

/**
 * The SPIFFE ID of the peer the local sidecar verified, from the LAST XFCC element: a Chaperone sidecar removes any
 * XFCC header the client sent and sets exactly one element of its own (DESIGN.md, invariant 4), so the last element
 * is the sidecar's. Undefined when there is no header (no sidecar verified a peer); ERR_XFCC_INVALID when the header
 * is malformed, repeated, names no SPIFFE ID, or (with `expectBy`) was set by another proxy than the one expected.
 */
export function peerIdFromRequest (req: RequestHeaders, options: { expectBy?: string | SpiffeId } = {}): SpiffeId | undefined {
  const values = headerValues(req, XFCC_HEADER)
  if (values.length === 0) return undefined
  if (values.length > 1) throw invalid(`sent ${values.length} times; the sidecar sets exactly one`)
  const elements = parseXfcc(values[0])
  const last = elements[elements.length - 1]
  if (options.expectBy !== undefined && last.by !== options.expectBy.toString()) {
    const by = last.by === undefined ? 'names no By' : `is by ${JSON.stringify(last.by)}`
    throw invalid(`the last element ${by}, not by the expected sidecar ${options.expectBy.toString()}`)
  }
  if (last.uri === undefined || last.uri === '') throw invalid('the last element has no URI (no SPIFFE ID)')
  try {
    return parseSpiffeId(last.uri)
  } catch (err) {
    throw invalid(`the URI is not a SPIFFE ID: ${(err as Error).message}`, err)
  }
}
