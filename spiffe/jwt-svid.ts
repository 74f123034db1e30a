/**
 * JWT-SVIDs: validation of a token against the JWT bundle of its subject's own trust domain
 * (https://github.com/spiffe/spiffe/blob/main/standards/JWT-SVID.md). jose checks the signature, `exp`, `nbf` and
 * `aud`; this module adds JWT-SVID's restrictions, picks the key, and gives every rejection a JwtSvidError code.
 */
import { decodeJwt, decodeProtectedHeader, errors, jwtVerify } from 'jose'
import type { JWK, JWTPayload, ProtectedHeaderParameters } from 'jose'
import { JwtSvidError } from './errors'
import type { JwtSvidErrorCode } from './errors'
import { parseSpiffeId } from './id'
import type { SpiffeId } from './id'
import type { JwtBundleSource } from './bundle-source'

export interface JwtSvid {
  /** The SPIFFE ID in `sub`. */
  id: SpiffeId
  /** The `aud` claim, always as a list. */
  audience: string[]
  expiresAt: Date
  issuedAt?: Date
  /** Every claim of the verified token. */
  claims: JWTPayload
  /** The token as received. */
  token: string
}

export interface ValidateJwtSvidOptions {
  /** Leeway in seconds for `exp` and `nbf`; none by default. */
  clockToleranceSeconds?: number
  /** The time to validate at; the current time by default. */
  now?: Date
}

/** JWT-SVID §2.1: the only algorithms allowed, each with the key type that can verify it. */
const KEY_FOR_ALG = new Map([
  ['RS256', 'RSA'], ['RS384', 'RSA'], ['RS512', 'RSA'],
  ['PS256', 'RSA'], ['PS384', 'RSA'], ['PS512', 'RSA'],
  ['ES256', 'EC P-256'], ['ES384', 'EC P-384'], ['ES512', 'EC P-521']
])

/** JWT-SVID §2.3. */
const ALLOWED_TYPES = new Set(['JWT', 'JOSE'])

/** JWT-SVID §5.1 / RFC 7515 §3.1: header.payload.signature, each base64url without padding. */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/

type SvidFields = Omit<JwtSvid, 'claims' | 'token'>

/** What a token says about itself before its signature is checked: what picks the key, and the SVID's fields. */
interface UnverifiedSvid {
  alg: string
  kid: string
  fields: SvidFields
}

/**
 * Validates a JWT-SVID: JWS compact form, allowed `alg` and `typ`, signature by the key `kid` of the bundle of the
 * trust domain in `sub`, `aud` holding one of `audience`, `exp` present and not past. Rejects with a JwtSvidError;
 * throws TypeError for a caller mistake (no expected audience, bad options).
 */
export async function validateJwtSvid (
  token: string, bundles: JwtBundleSource, audience: string | string[], options: ValidateJwtSvidOptions = {}
): Promise<JwtSvid> {
  const expected = expectedAudience(audience)
  const { clockToleranceSeconds = 0, now = new Date() } = options
  if (!Number.isFinite(clockToleranceSeconds) || clockToleranceSeconds < 0) {
    throw new TypeError('clockToleranceSeconds must be a number of seconds, 0 or more')
  }
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) throw new TypeError('now must be a valid Date')

  const svid = inspect(token)
  const key = keyFor(bundles, svid)
  let claims: JWTPayload
  try {
    // Verifies the very bytes inspect() read, so the fields returned below are covered by the signature.
    ({ payload: claims } = await jwtVerify(token, key, {
      algorithms: [svid.alg], audience: expected, clockTolerance: clockToleranceSeconds, currentDate: now
    }))
  } catch (err) {
    throw verificationFailure(err, svid, expected)
  }
  return { ...svid.fields, claims, token }
}

function rejection (code: JwtSvidErrorCode, message: string, cause?: unknown): JwtSvidError {
  return new JwtSvidError(code, message, { cause })
}

/** JWT-SVID §3.2: a validator identifies with at least one audience; none at all is the caller's bug. */
function expectedAudience (audience: string | string[]): string[] {
  const list: unknown = typeof audience === 'string' ? [audience] : audience
  if (!Array.isArray(list) || list.length === 0 || list.some(value => typeof value !== 'string' || value === '')) {
    throw new TypeError('validateJwtSvid needs at least one expected audience, each a non-empty string')
  }
  return list as string[]
}

/** Reads header and claims without trusting them, rejecting what no valid JWT-SVID can look like. */
function inspect (token: string): UnverifiedSvid {
  const { header, claims } = decode(token)
  const { alg, kid, typ } = header
  if (typeof alg !== 'string' || !KEY_FOR_ALG.has(alg)) {
    const allowed = [...KEY_FOR_ALG.keys()].join(', ')
    throw rejection('ERR_JWT_SVID_ALG_UNSUPPORTED', `alg ${show(alg)} is not allowed for JWT-SVIDs (JWT-SVID §2.1: ${allowed})`)
  }
  if (typ !== undefined && !ALLOWED_TYPES.has(typ)) {
    throw rejection('ERR_JWT_SVID_TYP_INVALID', `typ ${show(typ)} is not allowed; JWT-SVID §2.3 allows "JWT" or "JOSE"`)
  }
  // JWT-SVID §2.2 makes kid optional, but bundle keys are only found by it (go-spiffe rejects its absence too).
  if (typeof kid !== 'string' || kid === '') {
    throw rejection('ERR_JWT_SVID_KID_MISSING', 'token header has no "kid" to find its key by')
  }
  return { alg, kid, fields: readClaims(claims) }
}

function decode (token: string): { header: ProtectedHeaderParameters, claims: JWTPayload } {
  if (typeof token !== 'string') throw rejection('ERR_JWT_SVID_MALFORMED', 'token must be a string')
  if (token.split('.').length === 5) {
    throw rejection('ERR_JWT_SVID_MALFORMED', 'token is a JWE (encrypted JWT); JWT-SVIDs are signed JWS only (JWT-SVID §5.1)')
  }
  if (!COMPACT_JWS.test(token)) {
    throw rejection('ERR_JWT_SVID_MALFORMED',
      'token is not in JWS compact serialization: three base64url parts joined by "." (JWT-SVID §5.1)')
  }
  try {
    return { header: decodeProtectedHeader(token), claims: decodeJwt(token) }
  } catch (err) {
    throw rejection('ERR_JWT_SVID_MALFORMED', `token cannot be decoded: ${(err as Error).message}`, err)
  }
}

/** JWT-SVID §3: `sub`, `aud` and `exp` must be present and well-formed. */
function readClaims (claims: JWTPayload): SvidFields {
  const { sub, aud, exp, iat } = claims as Record<string, unknown>
  if (sub === undefined) throw rejection('ERR_JWT_SVID_SUB_INVALID', 'token has no "sub" claim (JWT-SVID §3.1)')
  let id: SpiffeId
  try {
    id = parseSpiffeId(sub as string)
  } catch (err) {
    throw rejection('ERR_JWT_SVID_SUB_INVALID', `token "sub" is not a SPIFFE ID: ${(err as Error).message}`, err)
  }
  if (aud === undefined || (Array.isArray(aud) && aud.length === 0)) {
    throw rejection('ERR_JWT_SVID_AUD_MISSING', `token for ${id.toString()} has no "aud" claim (JWT-SVID §3.2)`)
  }
  const audience: unknown[] = Array.isArray(aud) ? aud : [aud]
  if (audience.some(value => typeof value !== 'string')) {
    throw rejection('ERR_JWT_SVID_MALFORMED', `token "aud" must be a string or a list of strings, not ${show(aud)}`)
  }
  if (exp === undefined) {
    throw rejection('ERR_JWT_SVID_EXP_MISSING', `token for ${id.toString()} has no "exp" claim (JWT-SVID §3.3)`)
  }
  if (typeof exp !== 'number') {
    throw rejection('ERR_JWT_SVID_MALFORMED', `token "exp" must be a number of seconds, not ${show(exp)}`)
  }
  return {
    id,
    audience: audience as string[],
    expiresAt: new Date(exp * 1000),
    issuedAt: typeof iat === 'number' ? new Date(iat * 1000) : undefined
  }
}

/** The key `kid` from the bundle of the subject's own trust domain, never any other (JWT-SVID §4). */
function keyFor (bundles: JwtBundleSource, svid: UnverifiedSvid): JWK {
  const { id } = svid.fields
  const trustDomain = id.trustDomain
  const bundle = bundles.getJwtBundle(trustDomain)
  // A source that answers with another trust domain's bundle is treated as having none.
  if (bundle === undefined || !bundle.trustDomain.equals(trustDomain)) {
    throw rejection('ERR_JWT_SVID_NO_BUNDLE', `no JWT bundle for trust domain "${trustDomain.name}" of ${id.toString()}`)
  }
  const key = bundle.findKey(svid.kid)
  if (key === undefined) {
    throw rejection('ERR_JWT_SVID_KEY_NOT_FOUND',
      `trust domain "${trustDomain.name}" has no JWT authority with kid ${show(svid.kid)}`)
  }
  // The header's alg must suit the trusted key; otherwise the token names a signature this key cannot have made.
  const keyType = key.kty === 'EC' ? `EC ${key.crv}` : String(key.kty)
  const needed = KEY_FOR_ALG.get(svid.alg)
  if (keyType !== needed) {
    throw rejection('ERR_JWT_SVID_BAD_SIGNATURE',
      `key ${show(svid.kid)} of "${trustDomain.name}" is an ${keyType} key; ` +
      `it cannot verify an ${svid.alg} signature (needs ${needed})`)
  }
  return key
}

/** Gives a jose verification error our code, keeping it as the cause. */
function verificationFailure (err: unknown, svid: UnverifiedSvid, expected: string[]): JwtSvidError {
  const { id, audience, expiresAt } = svid.fields
  const subject = id.toString()
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return rejection('ERR_JWT_SVID_BAD_SIGNATURE',
      `signature of the token for ${subject} does not verify with key ${show(svid.kid)} of "${id.trustDomain.name}"`, err)
  }
  if (err instanceof errors.JWTExpired) {
    return rejection('ERR_JWT_SVID_EXPIRED', `token for ${subject} expired at ${expiresAt.toISOString()}`, err)
  }
  if (err instanceof errors.JWTClaimValidationFailed && err.claim === 'aud') {
    return rejection('ERR_JWT_SVID_AUD_MISMATCH',
      `token for ${subject} has audience ${show(audience)}, none of the expected ${show(expected)}`, err)
  }
  // RFC 7519 §4.1.5: jose also refuses a token used before its "nbf".
  if (err instanceof errors.JWTClaimValidationFailed && err.claim === 'nbf' && err.reason === 'check_failed') {
    return rejection('ERR_JWT_SVID_NOT_YET_VALID',
      `token for ${subject} is not valid yet ("nbf" is in the future)`, err)
  }
  // What remains is structure jose refuses after our checks: a "crit" header, a non-numeric "iat" or "nbf", …
  return rejection('ERR_JWT_SVID_MALFORMED', `token for ${subject} rejected: ${(err as Error).message}`, err)
}

/** Quotes an untrusted value for a message, shortened so a hostile token cannot flood the log. */
function show (value: unknown): string {
  const text = JSON.stringify(value) ?? String(value)
  return text.length > 100 ? `${text.slice(0, 97)}...` : text
}
