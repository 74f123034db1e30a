/**
 * A CA certificate for a downstream server's key (a nested SPIRE server, a device's Chaperone), exactly as SPIRE's
 * server signs one for NewDownstreamX509CA (pkg/server/ca/ca.go SignDownstreamX509CA; pkg/server/credtemplate/
 * builder.go BuildDownstreamX509CATemplate, buildX509CATemplate, computeX509CALifetime, computeCappedLifetime):
 * - the signing-certificate profile (cA=true and keyCertSign + cRLSign, both critical; the URI SAN is the trust
 *   domain's ID; SubjectKeyId of the new key, AuthorityKeyId of the signer);
 * - the subject is the parent's with OU=DOWNSTREAM-<n>, n the length of SPIRE's parent chain;
 * - TTL: the one asked for, or this CA's own CA TTL when that is 0 (or less); NotBefore 10 s back; NotAfter never
 *   after the signing authority's, which is itself never after anything above it.
 * The answer's chain is [the new CA, …the signing authority's upstream chain], ca_cert_chain in SPIRE's response.
 */
import type { KeyObject } from 'node:crypto'
import type { TrustDomain } from '../../spiffe'
import { CaError } from './errors'
import { backdated, expiryWithin } from './validity'
import type { X509Authority } from './x509-authority'
import { issueCertificate, nameValues } from './x509-certificate'

export interface DownstreamCa {
  /** DER: the new CA, then the signing authority's chain above it, never a root (ca_cert_chain). */
  readonly chain: Buffer[]
  /** DER: the trust domain's X.509 roots, as the bundle holds them (x509_authorities). */
  readonly roots: Buffer[]
  /** The new CA's NotAfter. */
  readonly expiresAt: Date
}

/** The attributes of Go's pkix.Name, in the order its ToRDNSequence writes them; `last`: Go keeps a single value. */
const GO_NAME_ATTRIBUTES: ReadonlyArray<{ readonly type: string, readonly last?: true }> = [
  { type: '2.5.4.6' }, // C
  { type: '2.5.4.8' }, // ST
  { type: '2.5.4.7' }, // L
  { type: '2.5.4.9' }, // street
  { type: '2.5.4.17' }, // postalCode
  { type: '2.5.4.10' }, // O
  { type: '2.5.4.11' }, // OU
  { type: '2.5.4.3', last: true }, // CN
  { type: '2.5.4.5', last: true } // serialNumber
]
const ORGANIZATIONAL_UNIT = '2.5.4.11'

/** preferred_ttl as SPIRE reads it: a whole number of seconds; 0 (or less) means this CA's own CA TTL. */
export function downstreamTtlSeconds (preferredTtlSeconds: unknown, caTtlSeconds: number): number {
  if (typeof preferredTtlSeconds !== 'number' || !Number.isSafeInteger(preferredTtlSeconds)) {
    throw new CaError('ERR_CA_REQUEST_INVALID', `preferredTtlSeconds must be a whole number of seconds (0 for the CA TTL), got ${JSON.stringify(preferredTtlSeconds)}`)
  }
  return preferredTtlSeconds > 0 ? preferredTtlSeconds : caTtlSeconds
}

/**
 * SPIRE's parent chain (pkg/server/ca/ca.go SetX509CA): the authority's upstream chain, the authority first, when it
 * has one; else the self-signed authority alone. Its length is the n of OU=DOWNSTREAM-n.
 */
export function parentChainOf (authority: X509Authority): readonly Buffer[] {
  return authority.intermediates.length > 0 ? authority.intermediates : [authority.cert.raw]
}

/**
 * The parent's subject as Go copies it into the template (pkix.Name: the attributes it knows, in its order, others
 * dropped) with the OU replaced by DOWNSTREAM-<n>. Go would write several values of one attribute as one
 * multi-valued RDN; here each is its own RDN (authorities' subjects hold one of each).
 */
export function downstreamSubject (parentSubject: Buffer, parentChainLength: number): Array<[string, string]> {
  const values = nameValues(parentSubject, GO_NAME_ATTRIBUTES.map(attribute => attribute.type))
  return GO_NAME_ATTRIBUTES.flatMap(({ type, last }, index): Array<[string, string]> => {
    if (type === ORGANIZATIONAL_UNIT) return [[type, `DOWNSTREAM-${parentChainLength}`]]
    const kept = last === true ? values[index].slice(-1).filter(value => value !== '') : values[index]
    return kept.map(value => [type, value])
  })
}

/** Signs the downstream CA for `publicKey` with `authority` at `now`; `ttlSeconds` as downstreamTtlSeconds gave it. */
export async function signDownstreamCa (
  authority: X509Authority, publicKey: KeyObject, ttlSeconds: number, trustDomain: TrustDomain, now: Date
): Promise<Omit<DownstreamCa, 'roots'>> {
  const expiresAt = expiryWithin(now, ttlSeconds, authority.notAfter)
  const der = await issueCertificate(authority.issuer, {
    role: 'ca',
    subject: downstreamSubject(authority.issuer.subject, parentChainOf(authority).length),
    publicKey,
    notBefore: backdated(now),
    notAfter: expiresAt,
    uri: trustDomain.idString
  })
  return { chain: [der, ...authority.intermediates], expiresAt }
}
