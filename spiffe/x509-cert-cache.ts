/**
 * Remembers work that depends only on bytes: parsing a certificate (OpenSSL 3 decodes one in ~200 µs) and whether
 * one certificate's signature verifies with another's key (~100 µs). A sidecar sees the same peers again and again,
 * so a repeat verification costs a map lookup instead. Nothing time- or trust-dependent is remembered: validity,
 * bundle membership and every SVID rule are still checked on every call.
 */
import { X509Certificate } from 'node:crypto'
import { parseCertificate } from './x509-cert'
import type { ParsedCertificate } from './x509-cert'

/** Bounded so a stream of distinct hostile certificates cannot grow memory; plenty for any device's peers. */
export const PARSE_CACHE_LIMIT = 256

const parsed = new Map<string, ParsedCertificate>()
const signatures = new WeakMap<ParsedCertificate, WeakMap<ParsedCertificate, boolean>>()

/** parseCertificate, remembered by the exact DER bytes (least recently used entries leave first). */
export function parseCertificateCached (input: Uint8Array | X509Certificate): ParsedCertificate {
  const der = input instanceof X509Certificate ? input.raw : input
  const key = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('latin1')
  let cert = parsed.get(key)
  if (cert !== undefined) {
    parsed.delete(key)
  } else {
    cert = parseCertificate(input)
    if (parsed.size >= PARSE_CACHE_LIMIT) parsed.delete(parsed.keys().next().value as string)
  }
  parsed.set(key, cert)
  return cert
}

/** Whether `issuer`'s key verifies `cert`'s signature; a pure function of both certificates' bytes. */
export function isSignedBy (cert: ParsedCertificate, issuer: ParsedCertificate): boolean {
  let byIssuer = signatures.get(cert)
  if (byIssuer === undefined) {
    byIssuer = new WeakMap()
    signatures.set(cert, byIssuer)
  }
  let verified = byIssuer.get(issuer)
  if (verified === undefined) {
    verified = cert.x509.verify(issuer.publicKey)
    byIssuer.set(issuer, verified)
  }
  return verified
}
