/**
 * Low-level X.509 certificate builder for the test PKI, on node-forge: an X.509 encoder independent of Node's
 * OpenSSL, so fixtures do not merely check our own code against itself. A CertSpec can express every defect the
 * matrix needs (missing or non-critical extensions, odd SANs, bad validity, a tampered signature, …).
 *
 * forge signs only with RSA, so we let forge encode the TBSCertificate, then patch its ASN.1: the real
 * SubjectPublicKeyInfo of a Node KeyObject and the signature AlgorithmIdentifier go in, and Node's crypto signs.
 */
import { createHash, createPublicKey, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto'
import forge from 'node-forge'

const { asn1 } = forge
type Asn1 = forge.asn1.Asn1

export type KeyUsageBit = 'digitalSignature' | 'keyEncipherment' | 'keyAgreement' | 'keyCertSign' | 'cRLSign'
export type ExtKeyUsagePurpose = 'serverAuth' | 'clientAuth'

/** A distinguished name; `{}` is the empty name (allowed for a subject when the SAN is critical). */
export interface NameSpec {
  commonName?: string
  organization?: string
}

/** The CA signing a certificate: its subject name, private key and subjectKeyIdentifier (for the AKI). */
export interface IssuerSpec {
  name: NameSpec
  key: KeyObject
  keyId: Buffer
}

/** A self-signed certificate: issuer name = subject name, signed with the subject's own private key. */
export interface SelfSignedSpec {
  selfSigned: KeyObject
}

/** Everything about a certificate; an absent optional extension is left out of the certificate. */
export interface CertSpec {
  subject: NameSpec
  issuer: IssuerSpec | SelfSignedSpec
  /** The subject's key (a public key, or a private key whose public half is used). */
  publicKey: KeyObject
  /** Positive, minimally encoded serial; random 128 bits when absent. */
  serial?: Buffer
  notBefore: Date
  notAfter: Date
  basicConstraints?: { cA: boolean, pathLen?: number, critical: boolean }
  keyUsage?: { usages: KeyUsageBit[], critical: boolean }
  extKeyUsage?: ExtKeyUsagePurpose[]
  /** URI SANs, written verbatim: invalid SPIFFE IDs and other schemes are allowed on purpose. */
  uris?: string[]
  dnsNames?: string[]
  /** Marks the subjectAltName extension critical (RFC 5280 4.2.1.6 requires it when the subject is empty). */
  sanCritical?: boolean
  /** One arbitrary extension, e.g. an unknown critical one; `value` is the DER inside extnValue. */
  extraExtension?: { oid: string, critical: boolean, value: Buffer }
  /** Flips a bit of the signature after signing, so the certificate parses but does not verify. */
  tamperSignature?: boolean
}

// RFC 5758 3.2: ecdsa-with-SHA256 has absent parameters; RFC 4055 5: sha256WithRSAEncryption has NULL parameters.
const SIGNATURE_ALGORITHMS: Record<string, { oid: string, params: Asn1[] }> = {
  ec: { oid: '1.2.840.10045.4.3.2', params: [] },
  rsa: { oid: '1.2.840.113549.1.1.11', params: [asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, '')] }
}

// forge's TBSCertificate encoder only understands RSA keys; this stand-in is replaced by the real SPKI.
const PLACEHOLDER_KEY = forge.pki.setRsaPublicKey(new forge.jsbn.BigInteger('1'), new forge.jsbn.BigInteger('1'))
const TBS_SIGNATURE_INDEX = 2
const TBS_SPKI_INDEX = 6

// forge functions that @types/node-forge leaves out or types too narrowly (node-forge/lib/x509.js, asn1.js).
// Without decodeBitStrings: false, forge may reinterpret the key bytes inside a BIT STRING as ASN.1.
const forgeInternals = forge as unknown as {
  pki: { getTBSCertificate: (cert: forge.pki.Certificate) => Asn1 }
  asn1: { fromDer: (der: string, options: { decodeBitStrings: boolean }) => Asn1 }
}

/** Builds the certificate `spec` describes and returns its DER; throws if Node cannot parse the result. */
export function buildCertificate (spec: CertSpec): Buffer {
  const spki = parseSpki(spec.publicKey)
  const keyId = subjectKeyIdFromSpki(spki)
  const signer = 'selfSigned' in spec.issuer
    ? { name: spec.subject, key: spec.issuer.selfSigned, keyId }
    : spec.issuer
  const algorithm = signatureAlgorithm(signer.key)

  const cert = forge.pki.createCertificate()
  cert.serialNumber = (spec.serial ?? randomSerial()).toString('hex')
  cert.validity.notBefore = spec.notBefore
  cert.validity.notAfter = spec.notAfter
  cert.setSubject(nameAttributes(spec.subject))
  cert.setIssuer(nameAttributes(signer.name))
  cert.setExtensions(extensions(spec, keyId, signer.keyId))
  cert.publicKey = PLACEHOLDER_KEY
  cert.siginfo.algorithmOid = algorithm.oid

  const tbs = forgeInternals.pki.getTBSCertificate(cert)
  children(tbs)[TBS_SIGNATURE_INDEX] = algorithmIdentifier(algorithm)
  children(tbs)[TBS_SPKI_INDEX] = spki
  const tbsDer = encode(tbs)

  const signature = sign('sha256', tbsDer, signer.key) // ECDSA signatures come DER-encoded, as X.509 wants
  if (spec.tamperSignature === true) signature[signature.length - 1] ^= 0x01
  const certificate = asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    tbs,
    algorithmIdentifier(algorithm),
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, '\x00' + binary(signature))
  ])
  const der = encode(certificate)
  new X509Certificate(der) // fail here, not later in a test, if Node cannot parse it
  return der
}

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING's value (no tag, length or unused-bits byte). */
export function subjectKeyId (publicKey: KeyObject): Buffer {
  return subjectKeyIdFromSpki(parseSpki(publicKey))
}

function subjectKeyIdFromSpki (spki: Asn1): Buffer {
  const bits = children(spki)[1].value
  if (typeof bits !== 'string') throw new Error('subjectPublicKey BIT STRING was decoded as ASN.1')
  return createHash('sha1').update(Buffer.from(bits.slice(1), 'binary')).digest()
}

function parseSpki (key: KeyObject): Asn1 {
  const publicKey = key.type === 'public' ? key : createPublicKey(key)
  const der = publicKey.export({ type: 'spki', format: 'der' })
  return forgeInternals.asn1.fromDer(binary(der), { decodeBitStrings: false })
}

function signatureAlgorithm (signingKey: KeyObject): { oid: string, params: Asn1[] } {
  const type = signingKey.asymmetricKeyType ?? 'unknown'
  const algorithm = SIGNATURE_ALGORITHMS[type]
  if (algorithm === undefined) throw new Error(`cannot sign with key type ${type}: only EC and RSA are supported`)
  return algorithm
}

function algorithmIdentifier ({ oid, params }: { oid: string, params: Asn1[] }): Asn1 {
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, [
    asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(oid).getBytes()),
    ...params
  ])
}

/** Random positive serial: 16 bytes, top bit clear (positive) and not zero (minimal DER). */
function randomSerial (): Buffer {
  const serial = randomBytes(16)
  serial[0] = (serial[0] & 0x7f) | 0x40
  return serial
}

// UTF8String, as RFC 5280 4.1.2.4 asks; forge's default PrintableString cannot hold '_' (allowed in trust domains).
// @types/node-forge types valueTagClass as a tag class, but forge reads it as the value's universal type.
const UTF8_STRING = asn1.Type.UTF8 as unknown as forge.asn1.Class

function nameAttributes (name: NameSpec): forge.pki.CertificateField[] {
  const attribute = (attributeName: string, value: string | undefined): forge.pki.CertificateField[] =>
    value === undefined ? [] : [{ name: attributeName, value, valueTagClass: UTF8_STRING }]
  return [...attribute('organizationName', name.organization), ...attribute('commonName', name.commonName)]
}

/** forge extension objects: forge encodes the named fields, or passes `value` through as the extnValue contents. */
function extensions (spec: CertSpec, keyId: Buffer, authorityKeyId: Buffer): Array<Record<string, unknown>> {
  const flags = (names: string[]): Record<string, boolean> => Object.fromEntries(names.map(n => [n, true]))
  const result: Array<Record<string, unknown>> = []
  const { basicConstraints: bc, keyUsage, extKeyUsage, extraExtension: extra } = spec
  if (bc !== undefined) {
    // forge writes pathLenConstraint whenever the key exists, so only add it when set.
    result.push({ name: 'basicConstraints', critical: bc.critical, cA: bc.cA, ...(bc.pathLen === undefined ? {} : { pathLenConstraint: bc.pathLen }) })
  }
  if (keyUsage !== undefined) result.push({ name: 'keyUsage', critical: keyUsage.critical, ...flags(keyUsage.usages) })
  if (extKeyUsage !== undefined) result.push({ name: 'extKeyUsage', ...flags(extKeyUsage) })
  // forge would derive the SKI from its placeholder key, so we give the value; the AKI takes an explicit keyIdentifier.
  result.push({ name: 'subjectKeyIdentifier', value: asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, binary(keyId)) })
  result.push({ name: 'authorityKeyIdentifier', keyIdentifier: binary(authorityKeyId) })
  const altNames = [
    ...(spec.uris ?? []).map(value => ({ type: 6, value })), // uniformResourceIdentifier [6]
    ...(spec.dnsNames ?? []).map(value => ({ type: 2, value })) // dNSName [2]
  ]
  if (altNames.length > 0) result.push({ name: 'subjectAltName', critical: spec.sanCritical === true, altNames })
  if (extra !== undefined) result.push({ id: extra.oid, critical: extra.critical, value: binary(extra.value) })
  return result
}

function children (node: Asn1): Asn1[] {
  if (!Array.isArray(node.value)) throw new Error('expected a constructed ASN.1 value')
  return node.value
}

/** forge works on "binary" strings: one char per byte. */
function binary (bytes: Buffer): string {
  return bytes.toString('binary')
}

function encode (node: Asn1): Buffer {
  return Buffer.from(asn1.toDer(node).getBytes(), 'binary')
}
