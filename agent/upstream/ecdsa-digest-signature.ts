/**
 * ECDSA over a digest the caller already computed, as Go's `ecdsa.Sign(rand, key, digest)` does (SEC 1 v2 §4.1.3,
 * with the digest taken as the hash value e). Node's `crypto.sign` always hashes its input (with `null` too: OpenSSL
 * picks the key's default digest), so it cannot sign a prepared digest; x509pop needs exactly that.
 *
 * The point multiplication stays in OpenSSL: the nonce k is the private half of a fresh ephemeral key pair, and r is
 * the x coordinate of its public half. Only the scalar arithmetic of s = k⁻¹(e + r·d) mod n is done here, with
 * BigInt, blinded by a random factor so the private scalar d never meets an unblinded operand.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { UpstreamError } from './errors'

/** The group orders n (SEC 2 v2 §2.4.2, §2.5.1, §2.6.1) of the curves Go's x509 accepts, by Node's curve name. */
const CURVE_ORDERS: Readonly<Record<string, bigint>> = {
  prime256v1: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
  secp384r1: 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
  secp521r1: 0x01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409n
}

/** An ECDSA signature as two big-endian integers without leading zero bytes (Go's `big.Int.Bytes()`). */
export interface EcdsaSignature {
  r: Buffer
  s: Buffer
}

/** Whether `key` (an EC private key) is on a curve signDigestEcdsa supports; the curve's name otherwise. */
export function unsupportedEcdsaCurve (key: KeyObject): string | undefined {
  const curve = key.asymmetricKeyDetails?.namedCurve ?? 'unknown'
  return curve in CURVE_ORDERS ? undefined : curve
}

/** Signs `digest` (used as is, never hashed again) with the EC private key `key`. */
export function signDigestEcdsa (key: KeyObject, digest: Buffer): EcdsaSignature {
  const curve = key.asymmetricKeyDetails?.namedCurve ?? 'unknown'
  const n = CURVE_ORDERS[curve]
  if (n === undefined) throw new UpstreamError('ERR_X509POP_CREDENTIAL_INVALID', `ECDSA on curve ${curve} is not supported (P-256, P-384, P-521 are)`)
  const d = scalarOf(key)
  const e = hashToInteger(digest, n)
  for (;;) {
    const ephemeral = generateKeyPairSync('ec', { namedCurve: curve })
    const k = scalarOf(ephemeral.privateKey)
    const r = integerOf(base64url(ephemeral.publicKey, 'x')) % n
    if (r === 0n) continue
    const blind = randomScalar(n)
    // s = (k·b)⁻¹ · (b·e + (b·r)·d) = k⁻¹ · (e + r·d)  (mod n)
    const s = modPow(k * blind % n, n - 2n, n) * ((blind * e + (blind * r % n) * d) % n) % n
    if (s === 0n) continue
    return { r: bytesOf(r), s: bytesOf(s) }
  }
}

/** SEC 1 §4.1.3 step 5 (Go's hashToInt): the digest's leftmost bits, as many as n has. */
function hashToInteger (digest: Buffer, n: bigint): bigint {
  const orderBits = n.toString(2).length
  const excess = digest.length * 8 - orderBits
  const e = integerOf(digest)
  return excess > 0 ? e >> BigInt(excess) : e
}

/** A uniform-enough scalar in [1, n-1]: 64 bits more than n, reduced. */
function randomScalar (n: bigint): bigint {
  return integerOf(randomBytes(Math.ceil(n.toString(16).length / 2) + 8)) % (n - 1n) + 1n
}

/** n is prime, so x⁻¹ = x^(n-2) mod n (Fermat). */
function modPow (base: bigint, exponent: bigint, modulus: bigint): bigint {
  let result = 1n
  let b = base % modulus
  for (let x = exponent; x > 0n; x >>= 1n) {
    if ((x & 1n) === 1n) result = result * b % modulus
    b = b * b % modulus
  }
  return result
}

function scalarOf (privateKey: KeyObject): bigint {
  return integerOf(base64url(privateKey, 'd'))
}

function base64url (key: KeyObject, member: 'd' | 'x'): Buffer {
  const value = key.export({ format: 'jwk' })[member]
  if (value === undefined) throw new UpstreamError('ERR_X509POP_CREDENTIAL_INVALID', `the EC key has no "${member}"`)
  return Buffer.from(value, 'base64url')
}

function integerOf (bytes: Buffer): bigint {
  return bytes.length === 0 ? 0n : BigInt(`0x${bytes.toString('hex')}`)
}

function bytesOf (value: bigint): Buffer {
  const hex = value.toString(16)
  return Buffer.from(hex.length % 2 === 0 ? hex : `0${hex}`, 'hex')
}
