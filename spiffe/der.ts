/**
 * A minimal, allocation-free DER reader: just enough ASN.1 to read the X.509 fields Node's X509Certificate
 * does not expose (extension criticality, key usage bits, URI SANs, key identifiers, exact validity).
 * Every read is bounds-checked; malformed input throws DerError, which callers turn into their own typed error.
 */

export class DerError extends Error {}

/** One TLV element: `tag` is the identifier octet; content is buf[start, end). */
export interface DerElement {
  readonly tag: number
  /** Offset of the identifier octet (so buf[offset, end) is the whole encoding). */
  readonly offset: number
  readonly start: number
  readonly end: number
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  OID: 0x06,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30
} as const

/** Reads the element at `offset`, which must end at or before `limit`. */
export function readElement (buf: Uint8Array, offset: number, limit = buf.length): DerElement {
  if (offset + 2 > limit) throw new DerError('truncated element header')
  const tag = buf[offset]
  if ((tag & 0x1f) === 0x1f) throw new DerError('high-tag-number form is not used in X.509')
  let length = buf[offset + 1]
  let start = offset + 2
  if (length & 0x80) {
    const octets = length & 0x7f
    // DER forbids the indefinite form (0x80); four length octets cover any certificate.
    if (octets === 0 || octets > 4) throw new DerError('unsupported length encoding')
    if (start + octets > limit) throw new DerError('truncated length')
    length = 0
    for (let i = 0; i < octets; i++) length = length * 256 + buf[start + i]
    start += octets
  }
  const end = start + length
  if (end > limit) throw new DerError('element overruns its container')
  return { tag, offset, start, end }
}

/** Reads an element and checks its tag. */
export function expectElement (buf: Uint8Array, offset: number, tag: number, limit?: number): DerElement {
  const el = readElement(buf, offset, limit)
  if (el.tag !== tag) throw new DerError(`expected tag 0x${tag.toString(16)}, found 0x${el.tag.toString(16)}`)
  return el
}

/** The direct children of a constructed element. */
export function children (buf: Uint8Array, parent: DerElement): DerElement[] {
  const out: DerElement[] = []
  for (let offset = parent.start; offset < parent.end;) {
    const el = readElement(buf, offset, parent.end)
    out.push(el)
    offset = el.end
  }
  return out
}

/** Dotted-decimal form of an OBJECT IDENTIFIER's content. */
export function readOid (buf: Uint8Array, el: DerElement): string {
  if (el.tag !== TAG.OID || el.end === el.start) throw new DerError('expected an OBJECT IDENTIFIER')
  const arcs: number[] = []
  let value = 0
  for (let i = el.start; i < el.end; i++) {
    value = value * 128 + (buf[i] & 0x7f)
    if ((buf[i] & 0x80) === 0) {
      if (arcs.length === 0) arcs.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80)
      else arcs.push(value)
      value = 0
    }
  }
  return arcs.join('.')
}

export function readBoolean (buf: Uint8Array, el: DerElement): boolean {
  if (el.tag !== TAG.BOOLEAN || el.end - el.start !== 1) throw new DerError('expected a BOOLEAN')
  return buf[el.start] !== 0
}

/** A small non-negative INTEGER (path lengths); larger values are clamped, which only makes limits looser than 2^31. */
export function readSmallInteger (buf: Uint8Array, el: DerElement): number {
  if (el.tag !== TAG.INTEGER || el.end === el.start) throw new DerError('expected an INTEGER')
  if (buf[el.start] & 0x80) throw new DerError('negative INTEGER where a count was expected')
  let value = 0
  for (let i = el.start; i < el.end; i++) value = Math.min(value * 256 + buf[i], 0x7fffffff)
  return value
}

/** UTCTime (YYMMDDHHMMSSZ, RFC 5280 4.1.2.5.1) or GeneralizedTime (YYYYMMDDHHMMSSZ) to a Date. */
export function readTime (buf: Uint8Array, el: DerElement): Date {
  const text = Buffer.from(buf.buffer, buf.byteOffset + el.start, el.end - el.start).toString('latin1')
  const utc = el.tag === TAG.UTC_TIME && /^\d{12}Z$/.test(text)
  const generalized = el.tag === TAG.GENERALIZED_TIME && /^\d{14}Z$/.test(text)
  if (!utc && !generalized) throw new DerError(`invalid time ${JSON.stringify(text)}`)
  let year: number
  let rest: string
  if (utc) {
    const yy = Number(text.slice(0, 2))
    year = yy >= 50 ? 1900 + yy : 2000 + yy
    rest = text.slice(2)
  } else {
    year = Number(text.slice(0, 4))
    rest = text.slice(4)
  }
  const field = (i: number): number => Number(rest.slice(i, i + 2))
  return new Date(Date.UTC(year, field(0) - 1, field(2), field(4), field(6), field(8)))
}

/** Splits concatenated DER structures (the Workload API's bundle and chain fields) into one buffer each. */
export function splitConcatenatedDer (der: Uint8Array): Buffer[] {
  const out: Buffer[] = []
  for (let offset = 0; offset < der.length;) {
    const el = expectElement(der, offset, TAG.SEQUENCE)
    out.push(Buffer.from(der.subarray(offset, el.end)))
    offset = el.end
  }
  return out
}
