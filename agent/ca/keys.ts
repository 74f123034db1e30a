/**
 * The CA's keys: generation (EC P-256 by default like SPIRE, RSA-2048 as the option), PKCS#8 PEM storage, and the
 * non-extractable WebCrypto keys certificates are signed with. Private keys stay KeyObjects or CryptoKeys in memory;
 * only the CA's own keys are ever written out, by ca-state.ts.
 */
import { createPrivateKey, createPublicKey, generateKeyPair, webcrypto } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { promisify } from 'node:util'

export type KeyType = 'ec-p256' | 'rsa-2048'
export const KEY_TYPES: readonly KeyType[] = ['ec-p256', 'rsa-2048']

export interface KeyPair {
  readonly privateKey: KeyObject
  readonly publicKey: KeyObject
}

/** A private key ready to sign certificates, with the signature algorithm that suits it. */
export interface SigningKey {
  readonly cryptoKey: webcrypto.CryptoKey
  readonly algorithm: webcrypto.AlgorithmIdentifier | webcrypto.EcdsaParams
}

const generate = promisify(generateKeyPair)

/** Asynchronous, so RSA generation (tens of milliseconds) does not stall the event loop. */
export async function generateKeys (keyType: KeyType): Promise<KeyPair> {
  return keyType === 'ec-p256'
    ? await generate('ec', { namedCurve: 'P-256' })
    : await generate('rsa', { modulusLength: 2048 })
}

/** Node's curve names → the JOSE/WebCrypto name and the hash that pairs with it (RFC 5758 §3.2, RFC 7518 §3.4). */
const CURVES: ReadonlyMap<string, { name: string, hash: string }> = new Map([
  ['prime256v1', { name: 'P-256', hash: 'SHA-256' }],
  ['secp384r1', { name: 'P-384', hash: 'SHA-384' }],
  ['secp521r1', { name: 'P-521', hash: 'SHA-512' }]
])

/** RFC 7518 §3.3 and NIST SP 800-131A: smaller RSA keys are too weak to sign or be certified. */
export const MIN_RSA_BITS = 2048

/**
 * A short name for a key: `ec-p256`, `ec-p384`, `rsa-2048`, `rsa-4096`, …; undefined for a key type we cannot sign
 * with or certify (Ed25519, RSA-PSS, DSA, small RSA, other curves).
 */
export function keyTypeName (key: KeyObject): string | undefined {
  const details = key.asymmetricKeyDetails ?? {}
  if (key.asymmetricKeyType === 'ec') {
    const curve = CURVES.get(details.namedCurve ?? '')
    return curve === undefined ? undefined : `ec-${curve.name.replace('-', '').toLowerCase()}`
  }
  const bits = details.modulusLength ?? 0
  return key.asymmetricKeyType === 'rsa' && bits >= MIN_RSA_BITS ? `rsa-${bits}` : undefined
}

/** A human description for error messages: `ec (prime256v1)`, `rsa (1024 bits)`, `ed25519`. */
export function describeKey (key: KeyObject): string {
  const { namedCurve, modulusLength } = key.asymmetricKeyDetails ?? {}
  const detail = namedCurve ?? (modulusLength === undefined ? undefined : `${modulusLength} bits`)
  return detail === undefined ? String(key.asymmetricKeyType) : `${key.asymmetricKeyType} (${detail})`
}

/** Imports a private key (of a type keyTypeName accepts) for WebCrypto signing; the CryptoKey is not extractable. */
export async function signingKeyOf (privateKey: KeyObject): Promise<SigningKey> {
  const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' })
  const curve = CURVES.get(privateKey.asymmetricKeyDetails?.namedCurve ?? '')
  if (curve !== undefined) {
    const cryptoKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, { name: 'ECDSA', namedCurve: curve.name }, false, ['sign'])
    return { cryptoKey, algorithm: { name: 'ECDSA', hash: curve.hash } }
  }
  const algorithm = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }
  return { cryptoKey: await webcrypto.subtle.importKey('pkcs8', pkcs8, algorithm, false, ['sign']), algorithm }
}

/** The JWS algorithm for a JWT signing key (JWT-SVID §2.1): ES256 for P-256, RS256 for RSA. */
export function jwsAlgorithmOf (keyType: KeyType): 'ES256' | 'RS256' {
  return keyType === 'ec-p256' ? 'ES256' : 'RS256'
}

/** Whether a private key is the one behind a public key (compared as SPKI DER). */
export function keysMatch (privateKey: KeyObject, publicKey: KeyObject): boolean {
  const spki = (key: KeyObject): Buffer => key.export({ type: 'spki', format: 'der' })
  return spki(createPublicKey(privateKey)).equals(spki(publicKey))
}

export function encodePrivateKey (privateKey: KeyObject): string {
  return privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
}

/** Reads a PEM private key (PKCS#8, or the SEC1/PKCS#1 forms openssl also writes); throws Node's error when it cannot. */
export function decodePrivateKey (pem: string): KeyObject {
  return createPrivateKey({ key: pem, format: 'pem' })
}
