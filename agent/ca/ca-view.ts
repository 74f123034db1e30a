/**
 * What the CA shows of itself: the trust domain's SPIFFE bundle (its X.509 roots and JWT keys, sequence and refresh
 * hint, SPIFFE_Trust_Domain_and_Bundle.md §4) and the status `chaperone ca show` prints.
 */
import type { X509Certificate } from 'node:crypto'
import { JwtBundle, SpiffeBundle, X509Bundle } from '../../spiffe'
import type { TrustDomain } from '../../spiffe'
import type { CaSnapshot } from './ca-state'
import type { KeyState, ScheduledKey } from './rotation'
import { activationTime } from './rotation'

export interface AuthorityStatus {
  state: KeyState
  subject: string
  serial: string
  keyType: string
  notBefore: Date
  notAfter: Date
  fingerprint256: string
  /** For the prepared authority: when it becomes active. */
  activatesAt?: Date
}

export interface JwtKeyStatus {
  state: KeyState
  kid: string
  alg: string
  notAfter: Date
  /** For the prepared key: when it becomes active. */
  activatesAt?: Date
}

export interface CaStatus {
  x509: AuthorityStatus[]
  jwt: JwtKeyStatus[]
  bundleSequence: number
  /** Whether the authorities are intermediates of an operator's upstream CA. */
  upstream: boolean
}

/** The X.509 authorities peers trust: our self-signed roots, or the upstream roots (never our intermediates). */
export function bundleRoots (snapshot: CaSnapshot, upstreamRoots?: readonly X509Certificate[]): readonly X509Certificate[] {
  return upstreamRoots ?? snapshot.x509.map(authority => authority.cert)
}

/** Identifies a bundle's contents, so a change of them (and only that) bumps the sequence. */
export function bundleContentKey (snapshot: CaSnapshot, upstreamRoots?: readonly X509Certificate[]): string {
  const roots = bundleRoots(snapshot, upstreamRoots).map(cert => cert.fingerprint256)
  return JSON.stringify([roots.sort(), snapshot.jwt.map(key => key.id).sort()])
}

export function buildBundle (
  trustDomain: TrustDomain, snapshot: CaSnapshot, refreshHintSeconds: number, upstreamRoots?: readonly X509Certificate[]
): SpiffeBundle {
  const jwt = new JwtBundle(trustDomain)
  for (const key of snapshot.jwt) jwt.addKey(key.id, key.publicJwk)
  const x509 = new X509Bundle(trustDomain, bundleRoots(snapshot, upstreamRoots))
  return new SpiffeBundle(trustDomain, { x509, jwt, sequence: snapshot.sequence, refreshHintSeconds })
}

/** `activatesAt` for the prepared key of a list, nothing for the others. */
function activation (key: ScheduledKey, keys: readonly ScheduledKey[]): { activatesAt?: Date } {
  const active = keys.find(candidate => candidate.state === 'active')
  return key.state === 'prepared' && active !== undefined ? { activatesAt: activationTime(active) } : {}
}

export function buildStatus (snapshot: CaSnapshot, upstream: boolean): CaStatus {
  return {
    x509: snapshot.x509.map(authority => ({
      state: authority.state,
      subject: authority.cert.subject.replace(/\n/g, ', '),
      serial: authority.cert.serialNumber,
      keyType: authority.keyType,
      notBefore: authority.notBefore,
      notAfter: authority.notAfter,
      fingerprint256: authority.cert.fingerprint256,
      ...activation(authority, snapshot.x509)
    })),
    jwt: snapshot.jwt.map(key => ({ state: key.state, kid: key.id, alg: key.alg, notAfter: key.notAfter, ...activation(key, snapshot.jwt) })),
    bundleSequence: snapshot.sequence,
    upstream
  }
}
