/**
 * ECDSA verification over a digest the caller already computed, as Go's `ecdsa.Verify(pub, digest, r, s)` does
 * (SEC 1 v2 §4.1.4, the digest taken as the hash value e): the check SPIRE's x509pop makes of a device's answer, the
 * mirror of agent/upstream/ecdsa-digest-signature.ts. Node's `crypto.verify` always hashes its input (with `null`
 * too, OpenSSL picks the key's default digest), so R = u1·G + u2·Q is computed here with BigInt, in Jacobian
 * coordinates on the NIST curves (a = −3). All it handles is public, so it need not run in constant time.
 */
import { ECDH, createECDH } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { TAG, children, expectElement } from '../../spiffe/der'

/** Jacobian (X, Y, Z) for the affine (X/Z², Y/Z³); Z = 0 is the point at infinity. */
interface Point { readonly x: bigint, readonly y: bigint, readonly z: bigint }
interface Curve { readonly name: string, readonly p: bigint, readonly n: bigint, readonly g: Point }

/** Field primes and group orders (FIPS 186-4 D.1.2) of the curves Go's x509 parses; the base points come from OpenSSL. */
const PARAMETERS: Readonly<Record<string, { p: bigint, n: bigint }>> = {
  secp224r1: { p: 2n ** 224n - 2n ** 96n + 1n, n: 0xffffffffffffffffffffffffffff16a2e0b8f03e13dd29455c5c2a3dn },
  prime256v1: { p: 2n ** 256n - 2n ** 224n + 2n ** 192n + 2n ** 96n - 1n, n: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n },
  secp384r1: {
    p: 2n ** 384n - 2n ** 128n - 2n ** 96n + 2n ** 32n - 1n,
    n: 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n
  },
  secp521r1: {
    p: 2n ** 521n - 1n,
    n: 0x01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409n
  }
}
const INFINITY: Point = { x: 1n, y: 1n, z: 0n }
const curves = new Map<string, Curve>()

/** Whether (r, s) — big-endian integers as Go's big.Int.SetBytes reads them — signs `digest` under the EC public key `key`. */
export function verifyDigestEcdsa (key: KeyObject, digest: Buffer, r: Buffer, s: Buffer): boolean {
  const curve = curveOf(key.asymmetricKeyDetails?.namedCurve)
  if (curve === undefined) return false
  const { n, p } = curve
  const [ri, si] = [integerOf(r), integerOf(s)]
  if (ri < 1n || ri >= n || si < 1n || si >= n) return false
  const q = publicPoint(key, curve.name)
  const w = inverse(si, n)
  const sum = sumOfMultiples(hashToInteger(digest, n) * w % n, curve.g, ri * w % n, q, p)
  if (sum.z === 0n) return false
  const x = sum.x * inverse(sum.z * sum.z, p) % p
  return x % n === ri
}

function curveOf (name: string | undefined): Curve | undefined {
  const parameters = name === undefined ? undefined : PARAMETERS[name]
  if (name === undefined || parameters === undefined) return undefined
  let curve = curves.get(name)
  if (curve === undefined) {
    const ecdh = createECDH(name)
    ecdh.setPrivateKey(Buffer.from([1]))
    curve = { name, ...parameters, g: pointOf(ecdh.getPublicKey()) }
    curves.set(name, curve)
  }
  return curve
}

/** Q from the key's SubjectPublicKeyInfo (JWK export does not know P-224), uncompressed by OpenSSL if need be. */
function publicPoint (key: KeyObject, curve: string): Point {
  const spki = key.export({ type: 'spki', format: 'der' })
  const bits = children(spki, expectElement(spki, 0, TAG.SEQUENCE))[1]
  return pointOf(ECDH.convertKey(spki.subarray(bits.start + 1, bits.end), curve, undefined, undefined, 'uncompressed') as Buffer)
}

/** An uncompressed SEC 1 point, 0x04 ‖ x ‖ y. */
function pointOf (encoded: Buffer): Point {
  const half = (encoded.length - 1) / 2
  return { x: integerOf(encoded.subarray(1, 1 + half)), y: integerOf(encoded.subarray(1 + half)), z: 1n }
}

/** a·A + b·B by Shamir's trick: one doubling per bit, and at most one addition. */
function sumOfMultiples (a: bigint, pa: Point, b: bigint, pb: Point, p: bigint): Point {
  const both = add(pa, pb, p)
  let acc = INFINITY
  for (let bit = BigInt(Math.max(a.toString(2).length, b.toString(2).length) - 1); bit >= 0n; bit--) {
    acc = double(acc, p)
    const [inA, inB] = [(a >> bit) & 1n, (b >> bit) & 1n]
    if (inA === 1n || inB === 1n) acc = add(acc, inA === 1n ? (inB === 1n ? both : pa) : pb, p)
  }
  return acc
}

/** dbl-2001-b for a = −3. */
function double (pt: Point, p: bigint): Point {
  if (pt.z === 0n || pt.y === 0n) return INFINITY
  const yy = pt.y * pt.y % p
  const zz = pt.z * pt.z % p
  const m = 3n * mod((pt.x - zz) * (pt.x + zz), p) % p
  const s = 4n * pt.x * yy % p
  const x = mod(m * m - 2n * s, p)
  return { x, y: mod(m * (s - x) - 8n * yy * yy, p), z: 2n * pt.y * pt.z % p }
}

/** add-1998-cmo-2, falling back to doubling for equal points. */
function add (a: Point, b: Point, p: bigint): Point {
  if (a.z === 0n) return b
  if (b.z === 0n) return a
  const [za2, zb2] = [a.z * a.z % p, b.z * b.z % p]
  const [u1, u2] = [a.x * zb2 % p, b.x * za2 % p]
  const [s1, s2] = [a.y * zb2 % p * b.z % p, b.y * za2 % p * a.z % p]
  const [h, r] = [mod(u2 - u1, p), mod(s2 - s1, p)]
  if (h === 0n) return r === 0n ? double(a, p) : INFINITY
  const hh = h * h % p
  const hhh = hh * h % p
  const v = u1 * hh % p
  const x = mod(r * r - hhh - 2n * v, p)
  return { x, y: mod(r * (v - x) - s1 * hhh, p), z: a.z * b.z % p * h % p }
}

/** Go's hashToNat: the digest's leftmost bits, as many as n has. */
function hashToInteger (digest: Buffer, n: bigint): bigint {
  const excess = digest.length * 8 - n.toString(2).length
  return excess > 0 ? integerOf(digest) >> BigInt(excess) : integerOf(digest)
}

/** a⁻¹ mod m by the extended Euclidean algorithm (m prime, a not a multiple of it). */
function inverse (a: bigint, m: bigint): bigint {
  let [r0, r1, t0, t1] = [m, mod(a, m), 0n, 1n]
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1, t0, t1] = [r1, r0 - q * r1, t1, t0 - q * t1]
  }
  return mod(t0, m)
}

function mod (value: bigint, modulus: bigint): bigint {
  const r = value % modulus
  return r < 0n ? r + modulus : r
}

function integerOf (bytes: Buffer): bigint {
  return bytes.length === 0 ? 0n : BigInt(`0x${bytes.toString('hex')}`)
}
