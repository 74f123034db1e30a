/**
 * RSASSA-PSS with SHA-256 over a digest the caller already computed, as Go's `rsa.SignPSS(rand, key, SHA256,
 * digest, nil)` does: RFC 8017 §9.1.1 EMSA-PSS-ENCODE with mHash = the given digest, then the raw RSA private-key
 * operation (OpenSSL's, blinded) through `privateEncrypt` without padding. Node's `crypto.sign` would hash the digest
 * a second time. The salt is as long as the hash (32 bytes); Go's verifier detects any salt length.
 */
import { constants, createHash, privateEncrypt, randomBytes } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { UpstreamError } from './errors'

const HASH_BYTES = 32
const SALT_BYTES = HASH_BYTES

/** Signs `digest` (32 bytes, SHA-256's size, used as is) with the RSA private key `key`. */
export function signDigestRsaPss (key: KeyObject, digest: Buffer): Buffer {
  if (digest.length !== HASH_BYTES) throw new RangeError(`a SHA-256 digest has ${HASH_BYTES} bytes, not ${digest.length}`)
  const modulusBits = key.asymmetricKeyDetails?.modulusLength
  if (modulusBits === undefined) throw new UpstreamError('ERR_X509POP_CREDENTIAL_INVALID', 'the RSA key has no modulus length')
  const encoded = encodePss(digest, modulusBits - 1)
  // The integer EM, left-padded to the modulus' length; its top bit is clear, so it is below the modulus.
  const block = Buffer.concat([Buffer.alloc(Math.ceil(modulusBits / 8) - encoded.length), encoded])
  return privateEncrypt({ key, padding: constants.RSA_NO_PADDING }, block)
}

/** RFC 8017 §9.1.1 EMSA-PSS-ENCODE(M, emBits) from mHash, with SHA-256 and MGF1-SHA-256. */
function encodePss (mHash: Buffer, emBits: number): Buffer {
  const emLength = Math.ceil(emBits / 8)
  if (emLength < HASH_BYTES + SALT_BYTES + 2) throw new UpstreamError('ERR_X509POP_CREDENTIAL_INVALID', `an RSA key of ${emBits + 1} bits is too short for PSS with SHA-256`)
  const salt = randomBytes(SALT_BYTES)
  const h = sha256(Buffer.alloc(8), mHash, salt)
  const db = Buffer.concat([Buffer.alloc(emLength - SALT_BYTES - HASH_BYTES - 2), Buffer.from([0x01]), salt])
  const mask = mgf1(h, db.length)
  for (let i = 0; i < db.length; i++) db[i] ^= mask[i]
  db[0] &= 0xff >> (8 * emLength - emBits)
  return Buffer.concat([db, h, Buffer.from([0xbc])])
}

/** RFC 8017 B.2.1 MGF1 with SHA-256. */
function mgf1 (seed: Buffer, length: number): Buffer {
  const blocks: Buffer[] = []
  for (let counter = 0; blocks.length * HASH_BYTES < length; counter++) {
    const c = Buffer.alloc(4)
    c.writeUInt32BE(counter)
    blocks.push(sha256(seed, c))
  }
  return Buffer.concat(blocks).subarray(0, length)
}

function sha256 (...parts: Buffer[]): Buffer {
  const hash = createHash('sha256')
  for (const part of parts) hash.update(part)
  return hash.digest()
}
