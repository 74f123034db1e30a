/**
 * PKCS#10 certificate signing requests (RFC 2986) as SPIRE's server takes them for NewDownstreamX509CA and
 * BatchNewX509SVID (pkg/server/api/svid/v1/service.go parseAndCheckCSR, newX509SVID): DER, self-signed by the key it
 * carries, and of all it says only that key is used (its subject, SANs and extensions are ignored, as SPIRE ignores
 * them). Refusals are ERR_CA_REQUEST_INVALID, worded as SPIRE's ("malformed CSR: …", "invalid CSR signature: …");
 * a key this CA does not certify (keys.ts) is refused too, as "invalid CSR: …".
 */
import { createPublicKey } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { CaError } from './errors'
import { describeKey, keyTypeName } from './keys'
import { readCertificationRequest } from './x509-certificate'
import type { CertificationRequest } from './x509-certificate'

function refuse (message: string, cause?: unknown): CaError {
  return new CaError('ERR_CA_REQUEST_INVALID', message, { cause })
}

/** The public key of a request, once the request is known to be well formed and signed by that key. */
export async function parseAndCheckCsr (der: unknown): Promise<KeyObject> {
  if (!(der instanceof Uint8Array)) throw refuse('malformed CSR: it must be the DER bytes of a PKCS#10 request')
  const bytes = Buffer.from(der.buffer, der.byteOffset, der.byteLength)
  const framing = derFramingProblem(bytes)
  if (framing !== undefined) throw refuse(`malformed CSR: ${framing}`)
  let request: CertificationRequest
  let publicKey: KeyObject
  try {
    request = readCertificationRequest(bytes)
    publicKey = createPublicKey({ key: request.spki, format: 'der', type: 'spki' })
  } catch (err) {
    throw refuse(`malformed CSR: ${(err as Error).message}`, err)
  }
  if (keyTypeName(publicKey) === undefined) {
    throw refuse(`invalid CSR: its key is ${describeKey(publicKey)}; this CA certifies EC (P-256, P-384, P-521) or RSA (2048 bits or more) keys`)
  }
  let verified: boolean
  try {
    verified = await request.verifySignature()
  } catch (err) {
    throw refuse(`invalid CSR signature: its signature algorithm cannot be checked with its ${describeKey(publicKey)} key (${(err as Error).message})`, err)
  }
  if (!verified) throw refuse('invalid CSR signature: the signature does not verify with the key the CSR carries')
  return publicKey
}

/**
 * Why `der` is not exactly one DER SEQUENCE (X.690 §8.1, definite length), or undefined. The parser alone would also
 * take PEM or Base64 text, and ignore bytes after the request, which Go refuses ("x509: trailing data").
 */
function derFramingProblem (der: Buffer): string | undefined {
  if (der.length === 0) return 'it is empty'
  if (der[0] !== 0x30 || der.length < 2) return 'it is not a DER SEQUENCE'
  const lengthOctets = der[1] < 0x80 ? 0 : der[1] & 0x7f
  if (der[1] === 0x80 || lengthOctets > 4 || der.length < 2 + lengthOctets) return 'it does not have a DER definite length'
  const contentLength = lengthOctets === 0 ? der[1] : der.readUIntBE(2, lengthOctets)
  const total = 2 + lengthOctets + contentLength
  if (total > der.length) return `it is cut short (${der.length} of ${total} bytes)`
  if (total < der.length) return `trailing data (${der.length - total} bytes after the request)`
  return undefined
}
