/**
 * The test PKI helper: root and intermediate CAs and X509-SVIDs shaped exactly like SPIRE's
 * (https://github.com/spiffe/spiffe/blob/main/standards/X509-SVID.md and SPIRE's defaults), built with build-cert.ts.
 * Options never produce a defect; `override` (applied last) is how the matrix builds deliberately broken certificates.
 * Nothing is cached: every call generates fresh keys.
 */
import { generateKeyPairSync, X509Certificate, type KeyObject } from 'node:crypto'
import { buildCertificate, subjectKeyId, type CertSpec, type IssuerSpec, type NameSpec } from './build-cert'

export type KeyType = 'ec-p256' | 'rsa-2048'

export interface CaOptions {
  /** Defaults to EC P-256, SPIRE's default. */
  keyType?: KeyType
  /** Defaults to 10 s before `now`. */
  notBefore?: Date
  /** Defaults to 24 h (SPIRE's CA TTL); never beyond the parent's NotAfter. */
  notAfter?: Date
  /** Subject common name; defaults to "<td> Root CA" or "<td> Intermediate CA <depth>". */
  name?: string
  /** The moment to build for; defaults to the current time. */
  now?: Date
  /** Certificate fields applied after all defaults: for deliberately broken CAs. */
  override?: Partial<CertSpec>
}

export interface SvidOptions {
  /** Defaults to EC P-256, whatever the CA's key type. */
  keyType?: KeyType
  /** DNS SANs, next to the URI SAN; they play no part in identity. */
  dnsNames?: string[]
  /** Defaults to 3600 (SPIRE's X509-SVID TTL); ignored when notAfter is given. */
  ttlSeconds?: number
  /** Defaults to 10 s before `now`, as SPIRE backdates against clock skew. */
  notBefore?: Date
  /** Never beyond the CA's NotAfter (SPIRE clamps the same way). */
  notAfter?: Date
  /** The moment to build for; defaults to the current time. */
  now?: Date
  /** Certificate fields applied after all defaults: for deliberately broken SVIDs. */
  override?: Partial<CertSpec>
}

/** An X509-SVID as the Workload API hands it out. */
export interface TestSvid {
  /** The SPIFFE ID written in the URI SAN. */
  id: string
  leaf: X509Certificate
  /** DER, leaf first, then the intermediates; the root is excluded (it is in the bundle). */
  chain: Buffer[]
  chainPem: string
  key: KeyObject
  /** The private key as PKCS#8 PEM. */
  keyPem: string
}

const ORGANIZATION = 'Chaperone test PKI'
const BACKDATE_MS = 10_000
const CA_TTL_MS = 24 * 3600_000
const SVID_TTL_SECONDS = 3600

/** Everything about a certificate except its keys, issuer and validity. */
export type CertProfile = Omit<CertSpec, 'issuer' | 'publicKey' | 'notBefore' | 'notAfter'>

/** SPIRE's X509-SVID profile. */
export function svidProfile (id: string, dnsNames: string[] = []): CertProfile {
  return {
    subject: { organization: ORGANIZATION },
    basicConstraints: { cA: false, critical: true },
    keyUsage: { usages: ['digitalSignature', 'keyEncipherment', 'keyAgreement'], critical: true },
    extKeyUsage: ['serverAuth', 'clientAuth'],
    uris: [id],
    dnsNames
  }
}

/** The signing-certificate profile: cA, keyCertSign + cRLSign, the trust domain's own ID as URI SAN. */
function caProfile (trustDomain: string, name: NameSpec): CertProfile {
  return {
    subject: name,
    basicConstraints: { cA: true, critical: true },
    keyUsage: { usages: ['keyCertSign', 'cRLSign'], critical: true },
    uris: [`spiffe://${trustDomain}`]
  }
}

export function generateKeyPair (type: KeyType = 'ec-p256'): { privateKey: KeyObject, publicKey: KeyObject } {
  return type === 'rsa-2048'
    ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : generateKeyPairSync('ec', { namedCurve: 'P-256' })
}

/** PEM text of DER certificates, in order. */
export function toPem (ders: Buffer[]): string {
  return ders.map(der => new X509Certificate(der).toString()).join('')
}

/** A CA of the test PKI: a root, or an intermediate below one. */
export class TestCa {
  readonly trustDomain: string
  readonly cert: X509Certificate
  readonly certDer: Buffer
  readonly certPem: string
  readonly key: KeyObject
  /** This CA's certificate and the intermediates above it, up to but excluding the root: what a peer presents
   * after its leaf. Empty for a root. */
  readonly chain: Buffer[]
  /** How certificates this CA signs name and sign their issuer: for building certificates with buildCertificate. */
  readonly signer: IssuerSpec
  /** The certificate's NotAfter; nothing this CA issues outlives it. */
  readonly notAfter: Date

  /** @internal Use createTestCa and createIntermediate. */
  constructor (trustDomain: string, certDer: Buffer, key: KeyObject, name: NameSpec, chain: Buffer[]) {
    this.trustDomain = trustDomain
    this.certDer = certDer
    this.cert = new X509Certificate(certDer)
    this.certPem = this.cert.toString()
    this.key = key
    this.chain = chain
    this.signer = { name, key, keyId: subjectKeyId(this.cert.publicKey) }
    this.notAfter = new Date(this.cert.validTo)
  }

  /** An intermediate CA signed by this one, in the same trust domain. */
  createIntermediate (opts: CaOptions = {}): TestCa {
    return buildCa(this.trustDomain, this, `${this.trustDomain} Intermediate CA ${this.chain.length + 1}`, opts)
  }

  /** An X509-SVID for `spiffeId` (written verbatim, even when invalid) signed by this CA. */
  issueSvid (spiffeId: string, opts: SvidOptions = {}): TestSvid {
    const { privateKey, publicKey } = generateKeyPair(opts.keyType)
    const leafDer = buildCertificate({
      ...svidProfile(spiffeId, opts.dnsNames),
      issuer: this.signer,
      publicKey,
      ...validity(opts, (opts.ttlSeconds ?? SVID_TTL_SECONDS) * 1000, this.notAfter),
      ...opts.override
    })
    const chain = [leafDer, ...this.chain]
    return {
      id: spiffeId,
      leaf: new X509Certificate(leafDer),
      chain,
      chainPem: toPem(chain),
      key: privateKey,
      keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
    }
  }
}

/** A self-signed root CA for `trustDomain` (a trust domain name such as `example.org`). */
export function createTestCa (trustDomain: string, opts: CaOptions = {}): TestCa {
  return buildCa(trustDomain, undefined, `${trustDomain} Root CA`, opts)
}

function buildCa (trustDomain: string, parent: TestCa | undefined, defaultName: string, opts: CaOptions): TestCa {
  const { privateKey, publicKey } = generateKeyPair(opts.keyType)
  const spec: CertSpec = {
    ...caProfile(trustDomain, { organization: ORGANIZATION, commonName: opts.name ?? defaultName }),
    issuer: parent?.signer ?? { selfSigned: privateKey },
    publicKey,
    ...validity(opts, CA_TTL_MS, parent?.notAfter),
    ...opts.override
  }
  const der = buildCertificate(spec)
  // spec.subject, not the default name: an override may rename the CA, and its children must name it as issuer.
  return new TestCa(trustDomain, der, privateKey, spec.subject, parent === undefined ? [] : [der, ...parent.chain])
}

/** SPIRE's window: NotBefore 10 s back against clock skew; NotAfter after the TTL, never past the issuer's. */
function validity (
  opts: { now?: Date, notBefore?: Date, notAfter?: Date },
  ttlMs: number,
  issuerNotAfter: Date | undefined
): { notBefore: Date, notAfter: Date } {
  const now = (opts.now ?? new Date()).getTime()
  const notAfter = opts.notAfter ?? new Date(now + ttlMs)
  return {
    notBefore: opts.notBefore ?? new Date(now - BACKDATE_MS),
    notAfter: issuerNotAfter !== undefined && issuerNotAfter < notAfter ? issuerNotAfter : notAfter
  }
}
