/**
 * JWT-SVIDs (standards/JWT-SVID.md): the CA's JWT signing keys and the tokens they sign. A key lives as long as an
 * X.509 authority and rotates on the same schedule; its public part is published in the bundle under its `kid`.
 */
import { createPublicKey, randomBytes } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { SignJWT } from 'jose'
import type { JWK } from 'jose'
import type { SpiffeId, TrustDomain } from '../../spiffe'
import { checkAudience, checkWorkloadId, seconds } from './checks'
import { generateKeys, jwsAlgorithmOf } from './keys'
import type { KeyType } from './keys'
import type { KeyState, ScheduledKey } from './rotation'
import { expiryWithin, wholeSeconds } from './validity'

export interface JwtKey extends ScheduledKey {
  /** The key ID (`kid`): 32 random base64url characters. */
  readonly id: string
  readonly keyType: KeyType
  readonly alg: 'ES256' | 'RS256'
  readonly privateKey: KeyObject
  /** The public key as a JWK, for the bundle. */
  readonly publicJwk: JWK
}

export interface JwtSvidRequest {
  readonly spiffeId: SpiffeId
  readonly audience: string[]
  readonly ttlSeconds?: number
}

/** A request whose fields have been checked, with defaults applied. */
export interface CheckedJwtRequest {
  readonly spiffeId: SpiffeId
  readonly audience: readonly string[]
  readonly ttlSeconds: number
}

/** Checks a request (ERR_CA_REQUEST_INVALID) before any work is done for it. */
export function checkJwtSvidRequest (request: JwtSvidRequest, trustDomain: TrustDomain, defaultTtlSeconds: number): CheckedJwtRequest {
  checkWorkloadId(request.spiffeId, trustDomain)
  return {
    spiffeId: request.spiffeId,
    audience: checkAudience(request.audience),
    ttlSeconds: seconds(request.ttlSeconds, defaultTtlSeconds, 'ttlSeconds', 'ERR_CA_REQUEST_INVALID')
  }
}

export async function createJwtKey (keyType: KeyType, ttlSeconds: number, now: Date): Promise<JwtKey> {
  const { privateKey } = await generateKeys(keyType)
  const notBefore = wholeSeconds(now.getTime())
  return jwtKeyOf(randomBytes(24).toString('base64url'), 'prepared', keyType, privateKey, notBefore, new Date(notBefore.getTime() + ttlSeconds * 1000))
}

/** A JWT key from its parts (fresh, or read back from disk). */
export function jwtKeyOf (id: string, state: KeyState, keyType: KeyType, privateKey: KeyObject, notBefore: Date, notAfter: Date): JwtKey {
  const publicJwk = createPublicKey(privateKey).export({ format: 'jwk' }) as JWK
  return { id, state, keyType, alg: jwsAlgorithmOf(keyType), privateKey, publicJwk, notBefore, notAfter }
}

/**
 * Signs a JWT-SVID: header alg, kid and typ JWT (JWT-SVID §2); claims sub, aud (always a list), iat and exp (§3).
 * The token never outlives its key, so every token validates for as long as it lives while the key is in the bundle.
 */
export async function signJwtSvid (key: JwtKey, request: CheckedJwtRequest, now: Date): Promise<{ token: string, expiresAt: Date, issuedAt: Date }> {
  const expiresAt = expiryWithin(now, request.ttlSeconds, key.notAfter)
  const issuedAt = new Date(Math.floor(now.getTime() / 1000) * 1000)
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: key.alg, kid: key.id, typ: 'JWT' })
    .setSubject(request.spiffeId.toString())
    .setAudience([...request.audience])
    .setIssuedAt(issuedAt.getTime() / 1000)
    .setExpirationTime(expiresAt.getTime() / 1000)
    .sign(key.privateKey)
  return { token, expiresAt, issuedAt }
}
