/**
 * One X.509 certificate, parsed once: Node's X509Certificate (OpenSSL) for signatures and names, plus the
 * extension details SPIFFE rules need, read from the DER (RFC 5280 §4.1, §4.2).
 */
import { X509Certificate } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { DerError, TAG, children, expectElement, readBoolean, readElement, readOid, readSmallInteger, readTime } from './der'
import type { DerElement } from './der'

/** Key usage bits (RFC 5280 §4.2.1.3), as a mask: bit n of the BIT STRING is `1 << n`. */
export const KeyUsage = {
  digitalSignature: 1 << 0,
  nonRepudiation: 1 << 1,
  keyEncipherment: 1 << 2,
  dataEncipherment: 1 << 3,
  keyAgreement: 1 << 4,
  keyCertSign: 1 << 5,
  cRLSign: 1 << 6,
  encipherOnly: 1 << 7,
  decipherOnly: 1 << 8
} as const

export const OID = {
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  anyExtendedKeyUsage: '2.5.29.37.0'
} as const

/** Extensions whose meaning we enforce, and which may therefore be critical (RFC 5280 §4.2: reject unknown critical ones). */
const HANDLED_EXTENSIONS: ReadonlySet<string> = new Set([
  OID.subjectKeyIdentifier, OID.keyUsage, OID.subjectAltName, OID.basicConstraints, OID.authorityKeyIdentifier, OID.extKeyUsage
])

export interface ParsedCertificate {
  readonly x509: X509Certificate
  readonly der: Buffer
  /** Decoded once here: Node decodes lazily, and a corrupt key must fail as a parse error, not mid-verification. */
  readonly publicKey: KeyObject
  readonly notBefore: Date
  readonly notAfter: Date
  readonly subjectIsEmpty: boolean
  readonly uris: readonly string[]
  readonly dnsNames: readonly string[]
  readonly sanCritical: boolean
  /** Absent when the certificate has no basicConstraints extension. */
  readonly basicConstraints?: { readonly cA: boolean, readonly pathLen?: number }
  /** Absent when the certificate has no keyUsage extension. */
  readonly keyUsage?: { readonly mask: number, readonly critical: boolean }
  /** Absent when the certificate has no extKeyUsage extension. */
  readonly extKeyUsage?: readonly string[]
  readonly subjectKeyId?: Buffer
  readonly authorityKeyId?: Buffer
  /** OIDs of critical extensions we do not process. */
  readonly unhandledCritical: readonly string[]
}

interface MutableExtensions {
  uris: string[]
  dnsNames: string[]
  sanCritical: boolean
  basicConstraints?: { cA: boolean, pathLen?: number }
  keyUsage?: { mask: number, critical: boolean }
  extKeyUsage?: string[]
  subjectKeyId?: Buffer
  authorityKeyId?: Buffer
  unhandledCritical: string[]
}

/** Parses DER (or an X509Certificate); throws DerError or Node's parse error on malformed input. */
export function parseCertificate (input: Uint8Array | X509Certificate): ParsedCertificate {
  const x509 = input instanceof X509Certificate ? input : new X509Certificate(input)
  const der = x509.raw
  const cert = expectElement(der, 0, TAG.SEQUENCE)
  const tbs = expectElement(der, cert.start, TAG.SEQUENCE, cert.end)
  const fields = children(der, tbs)
  // TBSCertificate: [0] version (optional), serial, signature, issuer, validity, subject, spki, [1], [2], [3] extensions.
  const first = fields[0]?.tag === 0xa0 ? 1 : 0
  const validity = fields[first + 3]
  const subject = fields[first + 4]
  if (validity === undefined || subject === undefined || validity.tag !== TAG.SEQUENCE) throw new DerError('truncated TBSCertificate')
  const [notBefore, notAfter] = children(der, validity).map(el => readTime(der, el))
  if (notBefore === undefined || notAfter === undefined) throw new DerError('validity needs notBefore and notAfter')
  const ext: MutableExtensions = { uris: [], dnsNames: [], sanCritical: false, unhandledCritical: [] }
  const extensions = fields.find(el => el.tag === 0xa3)
  if (extensions !== undefined) readExtensions(der, expectElement(der, extensions.start, TAG.SEQUENCE, extensions.end), ext)
  return { x509, der, publicKey: x509.publicKey, notBefore, notAfter, subjectIsEmpty: subject.end === subject.start, ...ext }
}

function readExtensions (der: Buffer, seq: DerElement, ext: MutableExtensions): void {
  const seen = new Set<string>()
  for (const extension of children(der, seq)) {
    const parts = children(der, extension)
    if (parts.length < 2 || parts.length > 3) throw new DerError('malformed extension')
    const oid = readOid(der, parts[0])
    const critical = parts.length === 3 ? readBoolean(der, parts[1]) : false
    const value = parts[parts.length - 1]
    if (value.tag !== TAG.OCTET_STRING) throw new DerError(`extension ${oid} value is not an OCTET STRING`)
    // RFC 5280 §4.2: a certificate must not include more than one instance of a particular extension.
    if (seen.has(oid)) throw new DerError(`extension ${oid} appears twice`)
    seen.add(oid)
    const inner = readElement(der, value.start, value.end)
    switch (oid) {
      case OID.subjectAltName: readSubjectAltName(der, inner, ext, critical); break
      case OID.basicConstraints: ext.basicConstraints = readBasicConstraints(der, inner); break
      case OID.keyUsage: ext.keyUsage = { mask: readKeyUsage(der, inner), critical }; break
      case OID.extKeyUsage: ext.extKeyUsage = children(der, inner).map(el => readOid(der, el)); break
      case OID.subjectKeyIdentifier: ext.subjectKeyId = octets(der, inner, TAG.OCTET_STRING); break
      case OID.authorityKeyIdentifier: ext.authorityKeyId = readAuthorityKeyId(der, inner); break
    }
    if (critical && !HANDLED_EXTENSIONS.has(oid)) ext.unhandledCritical.push(oid)
  }
}

function octets (der: Buffer, el: DerElement, tag: number): Buffer {
  if (el.tag !== tag) throw new DerError(`expected tag 0x${tag.toString(16)}`)
  return der.subarray(el.start, el.end)
}

/** GeneralNames: uniformResourceIdentifier is [6] IA5String, dNSName is [2] IA5String (implicit tags). */
function readSubjectAltName (der: Buffer, seq: DerElement, ext: MutableExtensions, critical: boolean): void {
  ext.sanCritical = critical
  for (const name of children(der, seq)) {
    if (name.tag === 0x86) ext.uris.push(der.toString('latin1', name.start, name.end))
    else if (name.tag === 0x82) ext.dnsNames.push(der.toString('latin1', name.start, name.end))
  }
}

function readBasicConstraints (der: Buffer, seq: DerElement): { cA: boolean, pathLen?: number } {
  let cA = false
  let pathLen: number | undefined
  for (const el of children(der, seq)) {
    if (el.tag === TAG.BOOLEAN) cA = readBoolean(der, el)
    else pathLen = readSmallInteger(der, el)
  }
  return pathLen === undefined ? { cA } : { cA, pathLen }
}

function readKeyUsage (der: Buffer, bits: DerElement): number {
  if (bits.tag !== TAG.BIT_STRING || bits.end === bits.start) throw new DerError('keyUsage is not a BIT STRING')
  let mask = 0
  for (let i = bits.start + 1, bit = 0; i < bits.end; i++) {
    for (let b = 0x80; b > 0; b >>= 1, bit++) if (der[i] & b) mask |= 1 << bit
  }
  return mask
}

/** AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING OPTIONAL, … }. */
function readAuthorityKeyId (der: Buffer, seq: DerElement): Buffer | undefined {
  const keyId = children(der, seq).find(el => el.tag === 0x80)
  return keyId === undefined ? undefined : der.subarray(keyId.start, keyId.end)
}

/** A short human label for a certificate in error messages. */
export function describeCertificate (cert: ParsedCertificate): string {
  const subject = (cert.x509.subject ?? '').replace(/\n/g, ', ')
  const name = subject.length > 0 ? `"${subject}"` : `serial ${cert.x509.serialNumber}`
  // An SVID's subject is often generic; its one URI SAN is what an operator recognises.
  return cert.uris.length === 1 ? `${name} <${cert.uris[0].slice(0, 200)}>` : name
}
