/**
 * Parsing shared by the clients of the agent's APIs (Workload API, Delegated Identity API): every defect becomes the
 * calling client's own "invalid response" error naming what was malformed, because it is a server bug, not the caller's.
 */
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { parseTrustDomain } from './id'
import type { TrustDomain } from './id'
import { JwtBundle } from './jwt-bundle'
import { X509Bundle } from './x509-bundle'

/** Makes a client's error for a malformed `what` (e.g. "X509-SVID 0 (spiffe://td/app)"). */
export type InvalidResponse = (what: string, cause: Error) => Error

/** Runs `parse`, turning whatever it throws into `invalid(what, …)`. */
export function parsing<T> (what: string, invalid: InvalidResponse, parse: () => T): T {
  try {
    return parse()
  } catch (err) {
    throw invalid(what, err as Error)
  }
}

/** Bundle maps are keyed by trust-domain SPIFFE IDs (`spiffe://example.org`); ours by trust domain name. */
export function parseBundleMap<B> (map: Record<string, Buffer>, invalid: InvalidResponse, parse: (trustDomain: TrustDomain, value: Buffer) => B): Map<string, B> {
  return new Map(Object.entries(map).map(([key, value]) => parsing(`bundle for ${JSON.stringify(key)}`, invalid, () => {
    const trustDomain = parseTrustDomain(key)
    return [trustDomain.name, parse(trustDomain, value)]
  })))
}

/** A map of X.509 bundles, each concatenated DER certificates, by trust domain name. */
export function parseX509BundleMap (map: Record<string, Buffer>, invalid: InvalidResponse): Map<string, X509Bundle> {
  return parseBundleMap(map, invalid, (td, der) => X509Bundle.fromDer(td, der))
}

/** A map of JWT bundles, each a JWKS document, by trust domain name. */
export function parseJwtBundleMap (map: Record<string, Buffer>, invalid: InvalidResponse): Map<string, JwtBundle> {
  return parseBundleMap(map, invalid, (td, json) => JwtBundle.fromJwks(td, json.toString('utf8')))
}

/**
 * An SVID's PKCS#8 DER private key, which must be the key of `leaf`: go-spiffe's x509svid.ParseRaw makes the same
 * check, since a key that does not match the leaf would fail every handshake.
 */
export function privateKeyOfLeaf (keyDer: Buffer, leaf: Buffer | X509Certificate): KeyObject {
  const key = createPrivateKey({ key: keyDer, format: 'der', type: 'pkcs8' })
  const spki = (k: KeyObject): Buffer => k.export({ type: 'spki', format: 'der' })
  const cert = leaf instanceof X509Certificate ? leaf : new X509Certificate(leaf)
  if (!spki(createPublicKey(key)).equals(spki(cert.publicKey))) throw new Error('the private key does not match the leaf certificate')
  return key
}
