/**
 * RSASSA-PSS verification with SHA-256 over a digest the caller already computed, as Go's
 * `rsa.VerifyPSS(pub, crypto.SHA256, digest, sig, nil)` does for SPIRE's x509pop: the salt length detected, RFC 8017
 * §9.1.2 EMSA-PSS-VERIFY with mHash = the given digest, after the raw RSA public-key operation (OpenSSL's, through
 * `publicDecrypt` without padding). The mirror of agent/upstream/rsa-pss-digest-signature.ts; Node's `crypto.verify`
 * would hash the digest again.
 */
import { constants, createHash, publicDecrypt } from 'node:crypto'
import type { KeyObject } from 'node:crypto'

const HASH_BYTES = 32
/** Go 1.24 refuses RSA keys under 1024 bits (crypto/rsa checkKeySize). */
const MIN_MODULUS_BITS = 1024

/** Whether `signature` signs `digest` (SHA-256's size, used as is) under the RSA public key `key`. */
export function verifyDigestRsaPss (key: KeyObject, digest: Buffer, signature: Buffer): boolean {
  const modulusBits = key.asymmetricKeyDetails?.modulusLength ?? 0
  const size = Math.ceil(modulusBits / 8)
  if (modulusBits < MIN_MODULUS_BITS || digest.length !== HASH_BYTES || signature.length !== size) return false
  let block: Buffer
  try {
    block = publicDecrypt({ key, padding: constants.RSA_NO_PADDING }, signature)
  } catch {
    return false // the signature is not below the modulus
  }
  // EM has emLen = ⌈(modBits − 1) / 8⌉ bytes; any byte before it in the modulus-sized block must be zero.
  const emBits = modulusBits - 1
  const emLength = Math.ceil(emBits / 8)
  const leading = block.length - emLength
  if (block.subarray(0, leading).some(byte => byte !== 0)) return false
  return emsaPssVerify(digest, Buffer.from(block.subarray(leading)), emBits)
}

/** RFC 8017 §9.1.2 steps 3–14 with SHA-256, MGF1-SHA-256 and the salt length read from the encoding (Go's autodetect). */
function emsaPssVerify (mHash: Buffer, em: Buffer, emBits: number): boolean {
  const emLength = em.length
  if (emLength < HASH_BYTES + 2 || em[emLength - 1] !== 0xbc) return false
  const db = em.subarray(0, emLength - HASH_BYTES - 1)
  const h = em.subarray(emLength - HASH_BYTES - 1, emLength - 1)
  const topBits = 0xff >> (8 * emLength - emBits)
  if ((db[0] & ~topBits) !== 0) return false
  xorMgf1(db, h)
  db[0] &= topBits
  const separator = db.indexOf(0x01)
  if (separator < 0 || db.subarray(0, separator).some(byte => byte !== 0)) return false
  const salt = db.subarray(separator + 1)
  return createHash('sha256').update(Buffer.alloc(8)).update(mHash).update(salt).digest().equals(h)
}

/** db ^= MGF1-SHA-256(seed, db.length) (RFC 8017 B.2.1), in place. */
function xorMgf1 (db: Buffer, seed: Buffer): void {
  const counter = Buffer.alloc(4)
  for (let offset = 0, block = 0; offset < db.length; offset += HASH_BYTES, block++) {
    counter.writeUInt32BE(block)
    const mask = createHash('sha256').update(seed).update(counter).digest()
    for (let i = 0; i < HASH_BYTES && offset + i < db.length; i++) db[offset + i] ^= mask[i]
  }
}
