/**
 * X509-SVIDs (standards/X509-SVID.md), shaped like SPIRE's: one URI SAN with the SPIFFE ID, DNS SANs from the
 * request (the first that fits a CN also as the subject's CN), keyUsage digitalSignature + keyEncipherment + keyAgreement (critical), EKU serverAuth
 * + clientAuth, cA=false (critical), NotBefore 10 s back, NotAfter capped at the signing authority's NotAfter.
 */
import type { KeyObject } from 'node:crypto'
import type { SpiffeId, TrustDomain } from '../../spiffe'
import { checkDnsNames, checkSvidPublicKey, checkWorkloadId, seconds } from './checks'
import { generateKeys } from './keys'
import type { KeyType } from './keys'
import { backdated, expiryWithin } from './validity'
import type { X509Authority } from './x509-authority'
import { issueCertificate } from './x509-certificate'

export interface X509SvidRequest {
  readonly spiffeId: SpiffeId
  /** The workload's public key; without one, a key pair of the CA's default SVID key type is generated. */
  readonly publicKey?: KeyObject
  readonly ttlSeconds?: number
  readonly dnsNames?: string[]
}

export interface X509SvidResult {
  /** DER, leaf first, then the intermediates up to (never including) a bundle root. */
  readonly chain: Buffer[]
  /** The private key, when the CA generated the key pair. */
  readonly privateKey?: KeyObject
  readonly expiresAt: Date
}

/** A request whose fields have been checked, with defaults applied. */
export interface CheckedSvidRequest {
  readonly spiffeId: SpiffeId
  readonly publicKey?: KeyObject
  readonly ttlSeconds: number
  readonly dnsNames: readonly string[]
}

/** RFC 5280 Appendix A, ub-common-name: a longer DNS name stays in the SAN only. */
const MAX_COMMON_NAME_LENGTH = 64

/** Checks a request (ERR_CA_REQUEST_INVALID) before any work is done for it. */
export function checkX509SvidRequest (request: X509SvidRequest, trustDomain: TrustDomain, defaultTtlSeconds: number): CheckedSvidRequest {
  checkWorkloadId(request.spiffeId, trustDomain)
  if (request.publicKey !== undefined) checkSvidPublicKey(request.publicKey)
  return {
    spiffeId: request.spiffeId,
    publicKey: request.publicKey,
    ttlSeconds: seconds(request.ttlSeconds, defaultTtlSeconds, 'ttlSeconds', 'ERR_CA_REQUEST_INVALID'),
    dnsNames: checkDnsNames(request.dnsNames)
  }
}

export async function signX509Svid (authority: X509Authority, request: CheckedSvidRequest, keyType: KeyType, now: Date): Promise<X509SvidResult> {
  let { publicKey } = request
  let privateKey: KeyObject | undefined
  if (publicKey === undefined) ({ publicKey, privateKey } = await generateKeys(keyType))
  const expiresAt = expiryWithin(now, request.ttlSeconds, authority.notAfter)
  const commonName = request.dnsNames.find(name => name.length <= MAX_COMMON_NAME_LENGTH)
  const leaf = await issueCertificate(authority.issuer, {
    role: 'svid',
    // A non-empty subject keeps the SAN non-critical (RFC 5280 §4.2.1.6); the CN helps tools that show only the subject.
    subject: commonName === undefined ? [['O', 'Chaperone']] : [['O', 'Chaperone'], ['CN', commonName]],
    publicKey,
    notBefore: backdated(now),
    notAfter: expiresAt,
    uri: request.spiffeId.toString(),
    dnsNames: request.dnsNames
  })
  return { chain: [leaf, ...authority.intermediates], ...(privateKey === undefined ? {} : { privateKey }), expiresAt }
}
