/**
 * The x509pop messages as SPIRE's server reads and writes them (SPIRE pkg/common/plugin/x509pop/x509pop.go): JSON
 * from Go's encoding/json, where every []byte is standard base64 with padding and an absent pointer is `null`.
 *   payload   {"certificates":["<leaf DER>","<intermediate DER>",…]}
 *   challenge {"rsa_signature":{"nonce":…},"ecdsa_signature":null}  or the other way round, by the leaf's key type
 *   response  {"rsa_signature":{"nonce":…,"signature":…},"ecdsa_signature":null}
 *             {"rsa_signature":null,"ecdsa_signature":{"nonce":…,"r":…,"s":…}}
 * Both nonces are exactly 32 bytes; the signed value is SHA-256(challenge nonce ‖ response nonce).
 */
import { UpstreamError } from './errors'

/** x509pop's nonce length, both ways (SPIRE refuses any other: "invalid challenge nonce"). */
export const X509POP_NONCE_BYTES = 32

/** Which signature the server asks for: it follows the leaf's key type. */
export type X509popSignatureKind = 'rsa_signature' | 'ecdsa_signature'

export type X509popSignature =
  | { kind: 'rsa_signature', nonce: Buffer, signature: Buffer }
  | { kind: 'ecdsa_signature', nonce: Buffer, r: Buffer, s: Buffer }

/** The attestation payload: the birth certificate, leaf first, then the intermediates up to (not including) a root. */
export function encodeX509popPayload (chain: readonly Buffer[]): Buffer {
  return Buffer.from(JSON.stringify({ certificates: chain.map(der => der.toString('base64')) }))
}

/** The server's nonce from a challenge for `kind`; any other shape is ERR_X509POP_CHALLENGE_INVALID. */
export function parseX509popChallenge (challenge: Buffer, kind: X509popSignatureKind): Buffer {
  let parsed: unknown
  try {
    parsed = JSON.parse(challenge.toString('utf8'))
  } catch (err) {
    throw new UpstreamError('ERR_X509POP_CHALLENGE_INVALID', `the x509pop challenge is not JSON: ${(err as Error).message}`, { cause: err })
  }
  const part = isObject(parsed) ? parsed[kind] : undefined
  if (!isObject(part)) {
    throw new UpstreamError('ERR_X509POP_CHALLENGE_INVALID', `the x509pop challenge has no "${kind}" (the birth certificate's key asks for it)`)
  }
  const nonce = decodeGoBytes(part.nonce, `${kind}.nonce`)
  if (nonce.length !== X509POP_NONCE_BYTES) {
    throw new UpstreamError('ERR_X509POP_CHALLENGE_INVALID', `the x509pop challenge nonce has ${nonce.length} bytes; x509pop uses ${X509POP_NONCE_BYTES}`)
  }
  return nonce
}

/** The challenge response; the unused kind is `null`, as Go writes a nil pointer. */
export function encodeX509popResponse (signature: X509popSignature): Buffer {
  const base64 = (bytes: Buffer): string => bytes.toString('base64')
  const body = signature.kind === 'rsa_signature'
    ? { rsa_signature: { nonce: base64(signature.nonce), signature: base64(signature.signature) }, ecdsa_signature: null }
    : { rsa_signature: null, ecdsa_signature: { nonce: base64(signature.nonce), r: base64(signature.r), s: base64(signature.s) } }
  return Buffer.from(JSON.stringify(body))
}

/** A []byte as Go encodes it: standard base64, padded; Node's decoder would silently skip anything else. */
function decodeGoBytes (value: unknown, field: string): Buffer {
  if (typeof value !== 'string' || value.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) {
    throw new UpstreamError('ERR_X509POP_CHALLENGE_INVALID', `the x509pop challenge's ${field} is not standard base64`)
  }
  return Buffer.from(value, 'base64')
}

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
