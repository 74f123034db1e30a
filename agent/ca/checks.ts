/**
 * Checks on what callers hand the CA (options at open, mint requests), each failing with a CaError that names the
 * field and the rule. Requests come from the Workload API and the admin API, so nothing here trusts its input's type.
 */
import { KeyObject } from 'node:crypto'
import { SpiffeId } from '../../spiffe'
import type { TrustDomain } from '../../spiffe'
import { CaError } from './errors'
import type { CaErrorCode } from './errors'
import { describeKey, keyTypeName } from './keys'

/** A positive whole number of seconds, or `fallback` when absent. */
export function seconds (value: unknown, fallback: number, field: string, code: CaErrorCode): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new CaError(code, `${field} must be a positive whole number of seconds, got ${JSON.stringify(value)}`)
  }
  return value
}

function refuse (message: string): CaError {
  return new CaError('ERR_CA_REQUEST_INVALID', message)
}

/** X509-SVID §2 and JWT-SVID §3.1: an SVID names a workload (an ID with a path) of this CA's own trust domain. */
export function checkWorkloadId (spiffeId: SpiffeId, trustDomain: TrustDomain): void {
  if (!(spiffeId instanceof SpiffeId)) throw refuse('spiffeId must be a SpiffeId (from parseSpiffeId)')
  if (!spiffeId.memberOf(trustDomain)) {
    throw refuse(`${spiffeId.toString()} is not in trust domain ${trustDomain.name}; this CA issues SVIDs for ${trustDomain.name} only`)
  }
  if (!spiffeId.hasPath) throw refuse(`${spiffeId.toString()} has no path; the trust domain's own ID identifies no workload`)
}

/** RFC 1035 §2.3.1 host names (LDH labels), optionally with one leading wildcard label (RFC 6125 §6.4.3). */
const DNS_NAME = /^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/
const MAX_DNS_NAME_LENGTH = 253

export function checkDnsNames (dnsNames: unknown): string[] {
  if (dnsNames === undefined) return []
  if (!Array.isArray(dnsNames)) throw refuse('dnsNames must be a list of DNS names')
  for (const name of dnsNames as unknown[]) {
    if (typeof name !== 'string' || name.length > MAX_DNS_NAME_LENGTH || !DNS_NAME.test(name)) {
      throw refuse(`dnsNames: ${JSON.stringify(name)} is not a DNS name (letters, digits and hyphens in dot-separated labels, optionally "*." first)`)
    }
  }
  return dnsNames as string[]
}

/** JWT-SVID §3.2: at least one audience, each a non-empty string. */
export function checkAudience (audience: unknown): string[] {
  if (!Array.isArray(audience) || audience.length === 0 || audience.some(value => typeof value !== 'string' || value === '')) {
    throw refuse('audience must be a non-empty list of non-empty strings (JWT-SVID §3.2)')
  }
  return audience as string[]
}

/** A caller-supplied SVID key: a public key of a type TLS peers accept and that is not too weak. */
export function checkSvidPublicKey (publicKey: KeyObject): void {
  if (!(publicKey instanceof KeyObject) || publicKey.type !== 'public') throw refuse('publicKey must be a public KeyObject')
  if (keyTypeName(publicKey) === undefined) {
    throw refuse(`publicKey is an ${describeKey(publicKey)} key; X509-SVIDs are issued for EC (P-256, P-384, P-521) or RSA (2048 bits or more) keys`)
  }
}
