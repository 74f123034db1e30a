/**
 * What the CA shows of itself: the trust domain's SPIFFE bundle (its X.509 roots and JWT keys, sequence and refresh
 * hint, SPIFFE_Trust_Domain_and_Bundle.md §4) and the status `chaperone ca show` prints.
 */
import type { X509Certificate } from 'node:crypto'
import type { JWK } from 'jose'
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
  /** Whether the authorities are intermediates of an upstream: CA files, or a remote upstream. */
  upstream: boolean
  /** The upstream, when there is one: "CA files", or the remote upstream's name (e.g. "SPIRE server 10.0.0.1:8081"). */
  upstreamName?: string
  /**
   * The last moment an X509-SVID can be signed with the authorities held now (the latest NotAfter of the active and
   * prepared ones): under a remote upstream, how long this CA can issue without reaching it.
   */
  issuesUntil: Date
}

/**
 * The X.509 authorities peers trust (never our intermediates): the roots of an upstream CA from files, else those of
 * a remote upstream's bundle, else our self-signed roots.
 */
export function bundleRoots (snapshot: CaSnapshot, upstreamRoots?: readonly X509Certificate[]): readonly X509Certificate[] {
  return upstreamRoots ?? snapshot.upstreamBundle?.x509.authorities ?? snapshot.x509.map(authority => authority.cert)
}

/** The JWT authorities by key ID: our keys, then a remote upstream's (other devices', the upstream's) under other key IDs. */
function jwtAuthorities (snapshot: CaSnapshot): Map<string, JWK> {
  const jwt = new Map<string, JWK>(snapshot.jwt.map(key => [key.id, key.publicJwk]))
  for (const [kid, jwk] of snapshot.upstreamBundle?.jwt.keys ?? []) if (!jwt.has(kid)) jwt.set(kid, jwk)
  return jwt
}

/** Identifies a bundle's contents, so a change of them (and only that) bumps the sequence. */
export function bundleContentKey (snapshot: CaSnapshot, upstreamRoots?: readonly X509Certificate[]): string {
  const roots = bundleRoots(snapshot, upstreamRoots).map(cert => cert.fingerprint256)
  // Key IDs with their keys: an upstream that changed the key under a key ID changes what is served.
  const jwt = [...jwtAuthorities(snapshot)].map(([kid, jwk]) => `${kid} ${JSON.stringify(jwk)}`)
  return JSON.stringify([roots.sort(), jwt.sort()])
}

export function buildBundle (
  trustDomain: TrustDomain, snapshot: CaSnapshot, refreshHintSeconds: number, upstreamRoots?: readonly X509Certificate[]
): SpiffeBundle {
  const x509 = new X509Bundle(trustDomain, bundleRoots(snapshot, upstreamRoots))
  const jwt = new JwtBundle(trustDomain)
  for (const [kid, jwk] of jwtAuthorities(snapshot)) jwt.addKey(kid, jwk)
  return new SpiffeBundle(trustDomain, { x509, jwt, sequence: snapshot.sequence, refreshHintSeconds })
}

/** `activatesAt` for the prepared key of a list, nothing for the others. */
function activation (key: ScheduledKey, keys: readonly ScheduledKey[]): { activatesAt?: Date } {
  const active = keys.find(candidate => candidate.state === 'active')
  return key.state === 'prepared' && active !== undefined ? { activatesAt: activationTime(active) } : {}
}

export function buildStatus (snapshot: CaSnapshot, upstreamName: string | undefined): CaStatus {
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
    upstream: upstreamName !== undefined,
    ...(upstreamName === undefined ? {} : { upstreamName }),
    issuesUntil: issuesUntil(snapshot)
  }
}

/** The latest NotAfter of the X.509 authorities that sign or will sign (active, prepared). */
export function issuesUntil (snapshot: CaSnapshot): Date {
  const signing = snapshot.x509.filter(authority => authority.state !== 'retired')
  return new Date(Math.max(...signing.map(authority => authority.notAfter.getTime())))
}
