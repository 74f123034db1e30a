/**
 * Certificate signing on Node's native WebCrypto through @peculiar/x509 (the one module that imports it): the two
 * profiles this CA issues, signing-certificate (CA) and X509-SVID, the facts about an issuer a signature needs, and
 * the reading of what others hand in (names, PKCS#10 requests). Profiles follow X509-SVID.md §4 and SPIRE's choices;
 * extension rules cite RFC 5280 §4.2.1.
 */
import 'reflect-metadata'
import * as x509 from '@peculiar/x509'
import { randomBytes, webcrypto } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import type { SigningKey } from './keys'

// Node's WebCrypto is the web standard's; only the type names differ (the DOM lib is not loaded here).
x509.cryptoProvider.set(webcrypto)

/** Who signs: the issuer's subject (DER, copied byte for byte so name chaining is exact) and key identifier. */
export interface CertificateIssuer {
  readonly subject: Buffer
  /** Hex subjectKeyIdentifier of the issuer, written as our authorityKeyIdentifier (RFC 5280 §4.2.1.1). */
  readonly keyId: string
  readonly signingKey: SigningKey
}

export interface CertificateRequest {
  readonly role: 'ca' | 'svid'
  /** Relative distinguished names in order, e.g. [['O', 'Chaperone'], ['CN', 'web.local']]; never empty. */
  readonly subject: ReadonlyArray<readonly [string, string]>
  readonly publicKey: KeyObject
  readonly notBefore: Date
  readonly notAfter: Date
  /** The one URI SAN: the trust domain's ID for a CA, the workload's SPIFFE ID for an SVID (X509-SVID.md §2, §4.1). */
  readonly uri: string
  readonly dnsNames?: readonly string[]
}

/** What a signing certificate (ours, or the operator's upstream CA) says about itself. */
export interface CertificateFacts {
  readonly subject: Buffer
  readonly keyId: string
  readonly isCa: boolean
  /** Absent when the certificate has no keyUsage extension (then every usage is allowed, RFC 5280 §4.2.1.3). */
  readonly canSignCertificates?: boolean
  readonly pathLength?: number
}

const SVID_KEY_USAGE = x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment | x509.KeyUsageFlags.keyAgreement
const CA_KEY_USAGE = x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign

/**
 * The name to put in a subject; its DER is what the issuer of later certificates will copy. Values are written as
 * given (never unescaped), as PrintableString when every character allows it, else UTF8String, as Go writes them.
 */
export function encodeName (rdns: ReadonlyArray<readonly [string, string]>): Buffer {
  const directoryString = (value: string): { printableString: string } | { utf8String: string } =>
    x509.Name.isPrintableString(value) ? { printableString: value } : { utf8String: value }
  return Buffer.from(new x509.Name(rdns.map(([type, value]) => ({ [type]: [directoryString(value)] }))).toArrayBuffer())
}

/** The values of each attribute type (an OID) in a DER name, in the order they appear. */
export function nameValues (der: Buffer, types: readonly string[]): string[][] {
  const name = new x509.Name(der)
  return types.map(type => name.getField(type))
}

/** A random positive 128-bit serial, as SPIRE uses (RFC 5280 §4.1.2.2: unique per CA, at most 20 octets). */
export function newSerialNumber (): string {
  return randomBytes(16).toString('hex')
}

/** Issues a certificate; returns its DER. `serialNumber` defaults to a fresh random one. */
export async function issueCertificate (issuer: CertificateIssuer, request: CertificateRequest, serialNumber = newSerialNumber()): Promise<Buffer> {
  const spki = request.publicKey.export({ type: 'spki', format: 'der' })
  const isCa = request.role === 'ca'
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(isCa, undefined, true),
    new x509.KeyUsagesExtension(isCa ? CA_KEY_USAGE : SVID_KEY_USAGE, true),
    // X509-SVID §4.4: an SVID serves both ends of mutual TLS.
    ...(isCa ? [] : [new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth])]),
    // Not critical: our subject is never empty (RFC 5280 §4.2.1.6 demands critical only for an empty subject).
    new x509.SubjectAlternativeNameExtension([
      { type: 'url', value: request.uri },
      ...(request.dnsNames ?? []).map(value => ({ type: 'dns' as const, value }))
    ]),
    await x509.SubjectKeyIdentifierExtension.create(spki),
    new x509.AuthorityKeyIdentifierExtension(issuer.keyId)
  ]
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber,
    subject: new x509.Name(encodeName(request.subject)),
    issuer: new x509.Name(issuer.subject),
    notBefore: request.notBefore,
    notAfter: request.notAfter,
    publicKey: spki,
    signingKey: issuer.signingKey.cryptoKey,
    signingAlgorithm: issuer.signingKey.algorithm,
    extensions
  })
  return Buffer.from(cert.rawData)
}

/** The key identifier of a public key: SHA-1 of its subjectPublicKey bits (RFC 5280 §4.2.1.2, method 1). */
export async function keyIdOf (publicKey: KeyObject): Promise<string> {
  return (await x509.SubjectKeyIdentifierExtension.create(publicKey.export({ type: 'spki', format: 'der' }))).keyId
}

/** Reads the facts a certificate's issuer role needs; the key identifier is computed when the certificate lacks one. */
export async function certificateFacts (der: Buffer): Promise<CertificateFacts> {
  const cert = new x509.X509Certificate(der)
  const basic = cert.getExtension(x509.BasicConstraintsExtension)
  const usage = cert.getExtension(x509.KeyUsagesExtension)
  const keyId = cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId ??
    (await x509.SubjectKeyIdentifierExtension.create(cert.publicKey.rawData)).keyId
  return {
    subject: Buffer.from(cert.subjectName.toArrayBuffer()),
    keyId,
    isCa: basic?.ca === true,
    canSignCertificates: usage === null ? undefined : (usage.usages & x509.KeyUsageFlags.keyCertSign) !== 0,
    pathLength: basic?.pathLength
  }
}

/** A PKCS#10 request (RFC 2986) as read: the key it carries and a check of its self-signature (over the bytes received). */
export interface CertificationRequest {
  /** DER SubjectPublicKeyInfo. */
  readonly spki: Buffer
  /** Whether the signature verifies with the request's own key; throws when the algorithm cannot be applied to it. */
  readonly verifySignature: () => Promise<boolean>
}

/** Reads a DER PKCS#10 request; throws the parser's error when it is not one. */
export function readCertificationRequest (der: Buffer): CertificationRequest {
  const request = new x509.Pkcs10CertificateRequest(der)
  return {
    spki: Buffer.from(request.publicKey.rawData),
    verifySignature: async () => await request.verify()
  }
}
