/**
 * The x509pop messages as SPIRE's server reads and writes them (SPIRE pkg/common/plugin/x509pop/x509pop.go): JSON
 * from Go's encoding/json, where every []byte is standard base64 with padding and an absent pointer is `null`.
 *   payload   {"certificates":["<leaf DER>","<intermediate DER>",…]}
 *   challenge {"rsa_signature":{"nonce":…},"ecdsa_signature":null}  or the other way round, by the leaf's key type
 *   response  {"rsa_signature":{"nonce":…,"signature":…},"ecdsa_signature":null}
 *             {"rsa_signature":null,"ecdsa_signature":{"nonce":…,"r":…,"s":…}}
 * Both nonces are exactly 32 bytes; the signed value is SHA-256(challenge nonce ‖ response nonce).
 * The device side encodes the payload and response and parses the challenge; the server side (agent/fleet/) the
 * other way round, reading as leniently as Go's json.Unmarshal does (below, "Go's reading").
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
  if (typeof value !== 'string' || !isStdBase64(value)) {
    throw new UpstreamError('ERR_X509POP_CHALLENGE_INVALID', `the x509pop challenge's ${field} is not standard base64`)
  }
  return Buffer.from(value, 'base64')
}

function isStdBase64 (value: string): boolean {
  return value.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(value)
}

/** Makes the error for a message Go's json.Unmarshal refuses, from Go's reason; the caller picks the error type. */
export type X509popMessageRefusal = (reason: string) => Error

/** The challenge for `kind` (the leaf key's), in Go's field order, the other kind `null`. */
export function encodeX509popChallenge (kind: X509popSignatureKind, nonce: Buffer): Buffer {
  const part = { nonce: nonce.toString('base64') }
  return Buffer.from(JSON.stringify({ rsa_signature: kind === 'rsa_signature' ? part : null, ecdsa_signature: kind === 'ecdsa_signature' ? part : null }))
}

/** The payload's certificates, leaf first, by Go's reading: none when the list is absent or null, empty for a null entry. */
export function parseX509popPayload (payload: Buffer, refuse: X509popMessageRefusal): Buffer[] {
  const list = parseGoJson(payload, 'x509pop.AttestationData', refuse).certificates
  if (list === undefined || list === null) return []
  if (!Array.isArray(list)) throw refuse(cannotUnmarshal(list, 'AttestationData.certificates', '[][]uint8'))
  return list.map(item => readGoBytes(item, 'AttestationData.certificates', refuse))
}

/** The response's signature of `kind` by Go's reading, or undefined when that kind is absent or null (missing fields are empty). */
export function parseX509popResponse (response: Buffer, kind: X509popSignatureKind, refuse: X509popMessageRefusal): X509popSignature | undefined {
  const root = parseGoJson(response, 'x509pop.Response', refuse)
  const bytes = (part: Record<string, unknown>, type: string, name: string): Buffer =>
    readGoBytes(goField(part, name), `${type}.${name}`, refuse)
  const rsa = goStruct(root.rsa_signature, 'Response.rsa_signature', 'x509pop.RSASignatureResponse', refuse)
  const ecdsa = goStruct(root.ecdsa_signature, 'Response.ecdsa_signature', 'x509pop.ECDSASignatureResponse', refuse)
  const rsaSignature = rsa && { kind: 'rsa_signature' as const, nonce: bytes(rsa, 'RSASignatureResponse', 'nonce'), signature: bytes(rsa, 'RSASignatureResponse', 'signature') }
  const ecdsaSignature = ecdsa && {
    kind: 'ecdsa_signature' as const,
    nonce: bytes(ecdsa, 'ECDSASignatureResponse', 'nonce'),
    r: bytes(ecdsa, 'ECDSASignatureResponse', 'r'),
    s: bytes(ecdsa, 'ECDSASignatureResponse', 's')
  }
  return kind === 'rsa_signature' ? rsaSignature : ecdsaSignature
}

/** A JSON document read into one of x509pop's Go structs (`null` is an empty one): its fields, by Go's key matching. */
function parseGoJson (json: Buffer, type: string, refuse: X509popMessageRefusal): Record<'certificates' | X509popSignatureKind, unknown> {
  let parsed: unknown
  try {
    parsed = JSON.parse(json.toString('utf8'))
  } catch (err) {
    throw refuse((err as Error).message)
  }
  if (parsed === null) parsed = {}
  if (!isObject(parsed)) throw refuse(`json: cannot unmarshal ${goJsonKind(parsed)} into Go value of type ${type}`)
  return { certificates: goField(parsed, 'certificates'), rsa_signature: goField(parsed, 'rsa_signature'), ecdsa_signature: goField(parsed, 'ecdsa_signature') }
}

/** A pointer-to-struct field: undefined for absent or null, the object otherwise. */
function goStruct (value: unknown, field: string, type: string, refuse: X509popMessageRefusal): Record<string, unknown> | undefined {
  if (value === undefined || value === null) return undefined
  if (!isObject(value)) throw refuse(cannotUnmarshal(value, field, type))
  return value
}

/** Go matches keys case-insensitively, and the last matching key in the document wins. */
function goField (object: Record<string, unknown>, name: string): unknown {
  const key = Object.keys(object).filter(k => k.toLowerCase() === name).pop()
  return key === undefined ? undefined : object[key]
}

/** A []byte as encoding/json reads it: base64 with padding (\r and \n skipped), an array of bytes, or null (empty). */
function readGoBytes (value: unknown, field: string, refuse: X509popMessageRefusal): Buffer {
  if (value === undefined || value === null) return Buffer.alloc(0)
  if (typeof value === 'string') {
    const text = value.replace(/[\r\n]/g, '')
    if (!isStdBase64(text)) throw refuse(`illegal base64 data in Go struct field ${field}`)
    return Buffer.from(text, 'base64')
  }
  if (Array.isArray(value) && value.every(b => Number.isInteger(b) && (b as number) >= 0 && (b as number) <= 255)) return Buffer.from(value as number[])
  throw refuse(cannotUnmarshal(value, field, '[]uint8'))
}

function cannotUnmarshal (value: unknown, field: string, type: string): string {
  return `json: cannot unmarshal ${goJsonKind(value)} into Go struct field ${field} of type ${type}`
}

/** JSON's kinds as Go's errors name them. */
function goJsonKind (value: unknown): string {
  if (Array.isArray(value)) return 'array'
  if (typeof value === 'boolean') return 'bool'
  return typeof value === 'object' ? 'object' : typeof value
}

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
