/**
 * One certificate of an x509pop payload or of the manufacturer roots, read as Go's crypto/x509 reads it for SPIRE's
 * x509pop plugin: the exact DER of issuer and subject names (Go chains by byte equality), the version and signature
 * algorithm (CheckSignatureFrom looks at both), the serial and subject CN as SPIRE's selectors write them, and the
 * public key as Go types it. Extensions come from spiffe/x509-cert.ts.
 */
import { createHash } from 'node:crypto'
import { TAG, children, expectElement, readOid, readSmallInteger } from '../../spiffe/der'
import type { DerElement } from '../../spiffe/der'
import { parseCertificate } from '../../spiffe/x509-cert'
import type { ParsedCertificate } from '../../spiffe/x509-cert'

/** Go's public key types for x509pop: those it parses (others leave PublicKey nil, "<nil>" in SPIRE's messages). */
export type GoPublicKeyType = 'rsa' | 'ecdsa' | 'ed25519' | 'dsa' | undefined

export interface PopCertificate {
  readonly parsed: ParsedCertificate
  readonly der: Buffer
  /** 1 to 3 (Go: a v3 certificate without basicConstraints may not sign others; a v1 one may). */
  readonly version: number
  readonly rawIssuer: Buffer
  readonly rawSubject: Buffer
  readonly signatureAlgorithm: string
  /** SPIRE's SerialNumberHex: lowercase, without leading zeros, padded to an even length. */
  readonly serialHex: string
  /** Go's Subject.CommonName: the last CN attribute, '' when none. */
  readonly commonName: string
  /** Go's Subject.Organization[0], '' when none. */
  readonly organization: string
  readonly spki: Buffer
  readonly keyType: GoPublicKeyType
  /** SPIRE's Fingerprint: SHA-1 of the DER, lowercase hex. */
  readonly fingerprint: string
}

/** The curves Go's x509 parses (x509.go namedCurveFromOID), by OpenSSL's names. */
const GO_CURVES: ReadonlySet<string> = new Set(['secp224r1', 'prime256v1', 'secp384r1', 'secp521r1'])
const COMMON_NAME = '2.5.4.3'
const ORGANIZATION = '2.5.4.10'

/** Reads `der`; throws an Error worded as Go's x509.ParseCertificate would refuse it. */
export function readPopCertificate (der: Buffer): PopCertificate {
  let cert: PopCertificate
  let serial: Buffer
  try {
    [cert, serial] = read(der)
  } catch (err) {
    throw new Error(`x509: malformed certificate (${(err as Error).message})`, { cause: err })
  }
  if ((serial[0] & 0x80) !== 0) throw new Error('x509: negative serial number')
  const curve = cert.parsed.publicKey.asymmetricKeyDetails?.namedCurve
  if (cert.keyType === 'ecdsa' && (curve === undefined || !GO_CURVES.has(curve))) throw new Error('x509: unsupported elliptic curve')
  // Go 1.25's ecdsa.ParseUncompressedPublicKey: a compressed point is refused.
  if (cert.keyType === 'ecdsa' && cert.spki[bitString(cert.spki).start + 1] !== 0x04) throw new Error('ecdsa: invalid uncompressed public key')
  return cert
}

function read (der: Buffer): [PopCertificate, Buffer] {
  const parsed = parseCertificate(der)
  const outer = children(der, expectElement(der, 0, TAG.SEQUENCE))
  const fields = children(der, outer[0])
  const explicitVersion = fields[0].tag === 0xa0
  const at = explicitVersion ? 1 : 0
  const serial = der.subarray(fields[at].start, fields[at].end)
  return [{
    parsed,
    der,
    version: explicitVersion ? readSmallInteger(der, children(der, fields[0])[0]) + 1 : 1,
    rawIssuer: encoding(der, fields[at + 2]),
    rawSubject: encoding(der, fields[at + 4]),
    signatureAlgorithm: readOid(der, children(der, outer[1])[0]),
    serialHex: spireSerialHex(serial.toString('hex')),
    commonName: attributes(der, fields[at + 4], COMMON_NAME).pop() ?? '',
    organization: attributes(der, fields[at + 4], ORGANIZATION).shift() ?? '',
    spki: encoding(der, fields[at + 5]),
    keyType: goKeyType(parsed.publicKey.asymmetricKeyType),
    fingerprint: createHash('sha1').update(der).digest('hex')
  }, serial]
}

/** SPIRE's SerialNumberHex of hex digits: lowercase, without leading zeros, padded to an even length. */
export function spireSerialHex (hexDigits: string): string {
  const hex = BigInt(`0x0${hexDigits}`).toString(16)
  return hex.length % 2 === 0 ? hex : `0${hex}`
}

function goKeyType (type: string | undefined): GoPublicKeyType {
  switch (type) {
    case 'rsa': return 'rsa'
    case 'ec': return 'ecdsa'
    case 'ed25519': return 'ed25519'
    case 'dsa': return 'dsa'
    default: return undefined
  }
}

/** SubjectPublicKeyInfo ::= SEQUENCE { algorithm, subjectPublicKey BIT STRING }. */
function bitString (spki: Buffer): DerElement {
  return children(spki, expectElement(spki, 0, TAG.SEQUENCE))[1]
}

function encoding (der: Buffer, el: DerElement): Buffer {
  return der.subarray(el.offset, el.end)
}

/** The values of attribute `oid` in a Name (SEQUENCE OF SET OF AttributeTypeAndValue), in order. */
function attributes (der: Buffer, name: DerElement, oid: string): string[] {
  const values: string[] = []
  for (const rdn of children(der, name)) {
    for (const attribute of children(der, rdn)) {
      const [type, value] = children(der, attribute)
      if (value !== undefined && readOid(der, type) === oid) values.push(decodeString(der, value))
    }
  }
  return values
}

/** Go's parseASN1String: BMPString is UTF-16BE, UTF8String UTF-8, the others (Printable, IA5, T61, Numeric) bytes as they are. */
function decodeString (der: Buffer, value: DerElement): string {
  const bytes = der.subarray(value.start, value.end)
  if (value.tag === 0x1e) return Buffer.from(bytes).swap16().toString('utf16le')
  return bytes.toString(value.tag === 0x0c ? 'utf8' : 'latin1')
}
