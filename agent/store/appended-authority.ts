/**
 * Appended authorities: X.509 roots and JWT keys an operator or an orchestrator adds to our own trust domain's
 * bundle beside the CA's (SPIRE's AppendBundle, `chaperone bundle append`), e.g. a second root trusted during a CA
 * migration, or an upstream root. What one must be, with SPIRE's words for a request that has none or one that does
 * not parse (api/bundle.go ParseJWTAuthorities, ParseX509Authorities), and our stricter rules beyond SPIRE's "it
 * parses": an X.509 authority is a CA certificate (basicConstraints cA, keyCertSign when it has a keyUsage), since
 * an SVID can chain to nothing else; a JWT authority's key is one a JWT-SVID can be signed with (EC P-256/384/521,
 * RSA ≥ 2048 bits); neither may have expired already, since it would never be served.
 */
import { createHash, createPublicKey } from 'node:crypto'
import type { JsonWebKey } from 'node:crypto'
import type { JWK } from 'jose'
import { splitConcatenatedDer } from '../../spiffe/der'
import type { TrustDomain } from '../../spiffe/id'
import { JwtBundle } from '../../spiffe/jwt-bundle'
import { KeyUsage, parseCertificate } from '../../spiffe/x509-cert'
import { AuthorityError } from './errors'

export interface JwtAuthorityInput {
  readonly keyId: string
  /** The public key, PKIX (SubjectPublicKeyInfo) DER. */
  readonly publicKey: Uint8Array
  /** Unix seconds; 0 or left out: it does not expire. */
  readonly expiresAt?: number
}

export interface AuthoritiesInput {
  /** DER certificates; one item may hold several, concatenated, as SPIRE reads them. */
  readonly x509?: readonly Uint8Array[]
  readonly jwt?: readonly JwtAuthorityInput[]
}

export interface AppendedX509Authority {
  readonly kind: 'x509'
  /** Lowercase hex SHA-256 of the DER: what names it (`chaperone bundle remove-authority --sha256`). */
  readonly sha256: string
  readonly der: Buffer
  readonly subject: string
  /** Its notAfter, unix seconds: it is not served from then on. */
  readonly expiresAt: number
  /** Unix seconds. */
  readonly appendedAt: number
}

export interface AppendedJwtAuthority {
  readonly kind: 'jwt'
  readonly keyId: string
  /** PKIX DER. */
  readonly publicKey: Buffer
  readonly jwk: JWK
  /** Unix seconds; 0: it does not expire. */
  readonly expiresAt: number
  readonly appendedAt: number
}

export type AppendedAuthority = AppendedX509Authority | AppendedJwtAuthority

/** The appended part of our own trust domain's bundle. */
export interface AppendedAuthorities {
  readonly trustDomain: TrustDomain
  /** In the order they were appended; expired ones too (stored until removed, never served). */
  readonly authorities: readonly AppendedAuthority[]
  /** Bumped by every append that added something and every removal; part of the bundle's sequence number. */
  readonly revision: number
}

export interface AppendedAuthoritiesChange {
  readonly kind: 'appended-authorities-changed'
  /** The appended authorities as the change left them (`bundle`, as every change but an entry's names its bundle). */
  readonly bundle: AppendedAuthorities
  /** The store-wide revision this change committed. */
  readonly storeRevision: number
}

/** Names one appended authority: an X.509 one by the SHA-256 of its DER (hex, colons allowed), a JWT one by key ID. */
export type AuthorityRef = { readonly sha256: string } | { readonly keyId: string }

export function isAppendedAuthoritiesChange (change: { readonly kind: string }): change is AppendedAuthoritiesChange {
  return change.kind === 'appended-authorities-changed'
}

/** Whether an authority is still served at `now` (unix seconds). */
export function isUnexpired (authority: Pick<AppendedAuthority, 'expiresAt'>, now: number): boolean {
  return authority.expiresAt === 0 || now < authority.expiresAt
}

/**
 * The authorities a request appends, checked in SPIRE's order (JWT ones first) at `now`; throws ERR_AUTHORITY_INVALID
 * with SPIRE's message ("no authorities to append", "failed to convert JWT authority: missing key ID", …).
 */
export function parseAuthorities (input: AuthoritiesInput, trustDomain: TrustDomain, now: number): AppendedAuthority[] {
  const jwt = input.jwt ?? []
  const x509 = input.x509 ?? []
  if (jwt.length === 0 && x509.length === 0) throw invalid('no authorities to append')
  const jwtAuthorities = converting('JWT authority', () => jwt.map(key => usable(jwtAuthority(key, trustDomain, now), now)))
  const x509Authorities = converting('X.509 authority', () => x509.flatMap(der => splitCertificates(der).map(cert => usable(x509Authority(cert, now), now))))
  return [...jwtAuthorities, ...x509Authorities]
}

/** An X.509 authority from its DER; throws (an Error with the reason) unless it is a CA certificate. */
export function x509Authority (der: Buffer, appendedAt: number): AppendedX509Authority {
  const cert = parseCertificate(der)
  if (cert.basicConstraints?.cA !== true) throw new Error('not a CA certificate (basicConstraints cA is not true): no SVID can chain to it')
  if (cert.keyUsage !== undefined && (cert.keyUsage.mask & KeyUsage.keyCertSign) === 0) throw new Error('its keyUsage lacks keyCertSign: it cannot sign SVIDs')
  return Object.freeze({
    kind: 'x509', sha256: sha256Of(der), der, subject: cert.x509.subject.replace(/\n/g, ', '), expiresAt: Math.floor(cert.notAfter.getTime() / 1000), appendedAt
  })
}

/** A JWT authority; throws (an Error with the reason) for a key that does not parse or cannot sign JWT-SVIDs. */
export function jwtAuthority (input: JwtAuthorityInput, trustDomain: TrustDomain, appendedAt: number): AppendedJwtAuthority {
  const key = createPublicKey({ key: Buffer.from(input.publicKey), format: 'der', type: 'spki' })
  // Re-encoded, so one key has one DER however it was sent: keys are compared by it.
  const publicKey = key.export({ type: 'spki', format: 'der' })
  const jwk = key.export({ format: 'jwk' })
  if (typeof input.keyId !== 'string' || input.keyId === '') throw new Error('missing key ID')
  const expiresAt = input.expiresAt ?? 0
  if (!Number.isSafeInteger(expiresAt) || expiresAt < 0) throw new Error(`its expiry must be unix seconds or 0 (none); got ${String(input.expiresAt)}`)
  // The SPIFFE bundle code decides which keys a JWT-SVID can be signed with, and keeps only their public members.
  const bundle = new JwtBundle(trustDomain)
  bundle.addKey(input.keyId, jwk)
  return Object.freeze({ kind: 'jwt', keyId: input.keyId, publicKey, jwk: bundle.findKey(input.keyId) as JWK, expiresAt, appendedAt })
}

/** A public key given as a JWK, as PKIX DER (what a JWT authority is compared and stored by). */
export function publicKeyDer (jwk: object): Buffer {
  return createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' }).export({ type: 'spki', format: 'der' })
}

/** Lowercase hex SHA-256 of a DER certificate. */
export function sha256Of (der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex')
}

/** A SHA-256 fingerprint as an operator may write it (`AB:CD:…`, as openssl prints it, or plain hex), as sha256Of gives it. */
export function normalizeSha256 (text: string): string {
  const hex = text.replace(/:/g, '').toLowerCase()
  if (!/^[0-9a-f]{64}$/.test(hex)) throw invalid(`${JSON.stringify(text)} is not a SHA-256 fingerprint: 64 hex digits, colons allowed (openssl x509 -noout -fingerprint -sha256)`)
  return hex
}

/** How an authority is named in messages and logs: `x509:<sha256>` or `jwt:<key ID>`. */
export function authorityName (authority: AppendedAuthority): string {
  return authority.kind === 'x509' ? `x509:${authority.sha256}` : `jwt:${authority.keyId}`
}

function splitCertificates (der: Uint8Array): Buffer[] {
  const certs = splitConcatenatedDer(der)
  if (certs.length === 0) throw new Error('no certificate')
  return certs
}

function usable<A extends AppendedAuthority> (authority: A, now: number): A {
  if (!isUnexpired(authority, now)) throw new Error(`it expired at ${new Date(authority.expiresAt * 1000).toISOString()}: it would never be served`)
  return authority
}

/** Runs a conversion; its failure becomes ERR_AUTHORITY_INVALID "failed to convert <what>: <reason>" (SPIRE's words). */
function converting<T> (what: string, convert: () => T): T {
  try {
    return convert()
  } catch (err) {
    throw invalid(`failed to convert ${what}: ${(err as Error).message}`, err)
  }
}

function invalid (message: string, cause?: unknown): AuthorityError {
  return new AuthorityError('ERR_AUTHORITY_INVALID', message, { cause })
}
