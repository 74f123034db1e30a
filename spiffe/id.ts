/**
 * SPIFFE IDs and trust domains, parsed exactly per the SPIFFE-ID standard
 * (https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md, sections 2.1–2.3).
 * Parsing never normalises: an ID is accepted only in its canonical form, so string equality is ID equality.
 */
import { SpiffeIdError, TrustDomainError } from './errors'

const SCHEME_PREFIX = 'spiffe://'
/** Section 2.3: IDs up to 2048 bytes must be supported; we reject longer ones rather than truncate. */
export const MAX_SPIFFE_ID_BYTES = 2048
/** Section 2.1: trust domain names up to 255 bytes. */
export const MAX_TRUST_DOMAIN_BYTES = 255

const TRUST_DOMAIN_RULE = 'trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores'
const PATH_RULE = 'path segment characters are limited to letters, numbers, dots, dashes, and underscores'

// Character classes as lookup tables over ASCII; anything at or above 0x80 is invalid in both positions.
const TRUST_DOMAIN_CHARS = charTable('abcdefghijklmnopqrstuvwxyz0123456789.-_')
const PATH_CHARS = charTable('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_')

function charTable (chars: string): Uint8Array {
  const table = new Uint8Array(128)
  for (let i = 0; i < chars.length; i++) table[chars.charCodeAt(i)] = 1
  return table
}

function isAllowed (table: Uint8Array, code: number): boolean {
  return code < 128 && table[code] === 1
}

/** Names the URI feature an operator most likely tried to use, so the error says more than "bad character". */
function hintFor (char: string, inTrustDomain: boolean): string {
  switch (char) {
    case ':': return inTrustDomain ? 'a port is not allowed' : 'found ":"'
    case '@': return inTrustDomain ? 'userinfo is not allowed' : 'found "@"'
    case '%': return 'percent-encoding is not allowed'
    case '?': return 'a query is not allowed'
    case '#': return 'a fragment is not allowed'
    default: {
      if (inTrustDomain && char >= 'A' && char <= 'Z') return 'trust domains must be lowercase'
      const code = char.codePointAt(0) ?? 0
      return code >= 0x21 && code <= 0x7e ? `found "${char}"` : `found U+${code.toString(16).toUpperCase().padStart(4, '0')}`
    }
  }
}

/** Returns the reason a trust domain name is invalid, or undefined when it is valid. */
function trustDomainProblem (name: string): string | undefined {
  if (name.length === 0) return 'trust domain is missing'
  for (let i = 0; i < name.length; i++) {
    if (!isAllowed(TRUST_DOMAIN_CHARS, name.charCodeAt(i))) {
      return `${TRUST_DOMAIN_RULE} (${hintFor(String.fromCodePoint(name.codePointAt(i) ?? 0), true)})`
    }
  }
  // All characters are ASCII by now, so the string length is the byte length.
  if (name.length > MAX_TRUST_DOMAIN_BYTES) return `trust domain exceeds ${MAX_TRUST_DOMAIN_BYTES} bytes`
  return undefined
}

/** Returns the reason an ID path ('' or '/seg/…') is invalid, or undefined when it is valid. */
function pathProblem (path: string): string | undefined {
  if (path.length === 0) return undefined
  if (path.charCodeAt(0) !== 0x2f) return 'path must begin with "/"'
  let segmentStart = 1
  for (let i = 1; i <= path.length; i++) {
    const code = i < path.length ? path.charCodeAt(i) : 0x2f
    if (code === 0x2f) {
      const segment = path.slice(segmentStart, i)
      if (segment.length === 0) {
        return i === path.length ? 'path cannot have a trailing slash' : 'path cannot contain empty segments'
      }
      if (segment === '.' || segment === '..') return 'path cannot contain dot segments'
      segmentStart = i + 1
    } else if (!isAllowed(PATH_CHARS, code)) {
      return `${PATH_RULE} (${hintFor(String.fromCodePoint(path.codePointAt(i) ?? 0), false)})`
    }
  }
  return undefined
}

/**
 * Held only by this module: constructors demand it, so IDs and trust domains can only come from the parsers
 * here and are therefore always valid (a library user cannot build `new TrustDomain('EVIL/..')`).
 */
const VALIDATED: unique symbol = Symbol('validated by spiffe/id')

function checkToken (token: symbol): void {
  if (token !== VALIDATED) throw new TypeError('use parseSpiffeId or parseTrustDomain to make SPIFFE IDs and trust domains')
}

/** A trust domain: the name part of a SPIFFE ID, e.g. `example.org`. Made by parseTrustDomain. */
export class TrustDomain {
  /** The trust domain name, e.g. `example.org`. */
  readonly name: string

  constructor (name: string, token: typeof VALIDATED) {
    checkToken(token)
    this.name = name
  }

  /** The trust domain's own SPIFFE ID, `spiffe://<name>` (no path): the key used in bundle maps. */
  get idString (): string {
    return SCHEME_PREFIX + this.name
  }

  /** The SPIFFE ID of a workload in this trust domain, from its path (e.g. `/ns/prod/sa/api`). */
  id (path: string): SpiffeId {
    const problem = pathProblem(path)
    if (problem !== undefined) throw new SpiffeIdError(`invalid SPIFFE ID path ${JSON.stringify(path)}: ${problem}`)
    if (this.idString.length + path.length > MAX_SPIFFE_ID_BYTES) {
      throw new SpiffeIdError(`SPIFFE ID exceeds the maximum length of ${MAX_SPIFFE_ID_BYTES} bytes`)
    }
    return new SpiffeId(this, path, VALIDATED)
  }

  equals (other: TrustDomain): boolean {
    return this.name === other.name
  }

  toString (): string {
    return this.name
  }

  toJSON (): string {
    return this.name
  }
}

/** A SPIFFE ID: `spiffe://<trust domain><path>`, always held in canonical form. Made by parseSpiffeId or TrustDomain#id. */
export class SpiffeId {
  readonly trustDomain: TrustDomain
  /** The path, `''` for a trust domain's own ID, else `/segment[/segment…]`. */
  readonly path: string
  /** The ID's text, built once: IDs are compared and looked up by it on every connection. */
  readonly #text: string

  constructor (trustDomain: TrustDomain, path: string, token: typeof VALIDATED) {
    checkToken(token)
    this.trustDomain = trustDomain
    this.path = path
    this.#text = SCHEME_PREFIX + trustDomain.name + path
  }

  /** True for a workload ID; false for a trust domain's own ID (empty path), which identifies no workload. */
  get hasPath (): boolean {
    return this.path.length > 0
  }

  /** True when this ID belongs to the given trust domain (a TrustDomain or its name). */
  memberOf (trustDomain: TrustDomain | string): boolean {
    return this.trustDomain.name === (typeof trustDomain === 'string' ? trustDomain : trustDomain.name)
  }

  equals (other: SpiffeId | string): boolean {
    return this.toString() === other.toString()
  }

  toString (): string {
    return this.#text
  }

  toJSON (): string {
    return this.toString()
  }
}

/** Parses a SPIFFE ID; throws SpiffeIdError (`ERR_SPIFFE_ID_INVALID`) naming the rule broken. */
export function parseSpiffeId (text: string): SpiffeId {
  if (typeof text !== 'string') throw new SpiffeIdError('SPIFFE ID must be a string')
  const fail = (reason: string): never => { throw new SpiffeIdError(`invalid SPIFFE ID ${quote(text)}: ${reason}`) }
  if (text.length === 0) fail('cannot be empty')
  if (!text.startsWith(SCHEME_PREFIX)) fail('scheme is missing or invalid (must be "spiffe://", lowercase)')
  const slash = text.indexOf('/', SCHEME_PREFIX.length)
  const name = slash === -1 ? text.slice(SCHEME_PREFIX.length) : text.slice(SCHEME_PREFIX.length, slash)
  const path = slash === -1 ? '' : text.slice(slash)
  const tdProblem = trustDomainProblem(name)
  if (tdProblem !== undefined) fail(tdProblem)
  const problem = pathProblem(path)
  if (problem !== undefined) fail(problem)
  if (text.length > MAX_SPIFFE_ID_BYTES) fail(`exceeds the maximum length of ${MAX_SPIFFE_ID_BYTES} bytes`)
  return new SpiffeId(new TrustDomain(name, VALIDATED), path, VALIDATED)
}

/**
 * Parses a trust domain from its name (`example.org`) or from any SPIFFE ID in it (`spiffe://example.org/x`);
 * throws TrustDomainError (`ERR_TRUST_DOMAIN_INVALID`) naming the rule broken.
 */
export function parseTrustDomain (text: string): TrustDomain {
  if (typeof text !== 'string') throw new TrustDomainError('trust domain must be a string')
  if (text.includes(':/')) {
    try {
      return parseSpiffeId(text).trustDomain
    } catch (err) {
      throw new TrustDomainError((err as Error).message.replace('invalid SPIFFE ID', 'invalid trust domain'))
    }
  }
  const problem = trustDomainProblem(text)
  if (problem !== undefined) throw new TrustDomainError(`invalid trust domain ${quote(text)}: ${problem}`)
  return new TrustDomain(text, VALIDATED)
}

/** Quotes input for an error message, shortened so a hostile 1 MB string does not flood the log. */
function quote (text: string): string {
  return JSON.stringify(text.length > 120 ? `${text.slice(0, 117)}...` : text)
}
