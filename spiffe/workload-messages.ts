/**
 * The Workload API's response messages (spiffe/workload.proto, as proto-loader decodes them) and their parsing into
 * our types. Anything malformed is ERR_WORKLOAD_API_RESPONSE_INVALID: a server bug, not the caller's.
 */
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { splitConcatenatedDer } from './der'
import { parseSpiffeId, parseTrustDomain } from './id'
import type { TrustDomain } from './id'
import { JwtBundle } from './jwt-bundle'
import { X509Bundle } from './x509-bundle'
import { WorkloadApiError } from './workload-errors'

export interface X509SvidMessage { spiffe_id: string, x509_svid: Buffer, x509_svid_key: Buffer, bundle: Buffer, hint: string }
export interface X509SvidResponseMessage { svids: X509SvidMessage[], crl: Buffer[], federated_bundles: Record<string, Buffer> }
export interface X509BundlesResponseMessage { crl: Buffer[], bundles: Record<string, Buffer> }
export interface JwtSvidResponseMessage { svids: Array<{ spiffe_id: string, svid: string, hint: string }> }
export interface JwtBundlesResponseMessage { bundles: Record<string, Buffer> }

export interface X509Svid {
  spiffeId: string
  /** DER, leaf first. */
  chain: Buffer[]
  key: KeyObject
  /** The bundle of the SVID's own trust domain. */
  bundle: X509Bundle
  hint: string
}

export interface X509SvidResponseParsed {
  /** The first is the default identity (Workload API §8). */
  svids: X509Svid[]
  /** By trust domain name (e.g. `example.org`). */
  federatedBundles: Map<string, X509Bundle>
}

/** Runs `parse`, turning whatever it throws into ERR_WORKLOAD_API_RESPONSE_INVALID naming `what`. */
function parsing<T> (what: string, parse: () => T): T {
  try {
    return parse()
  } catch (err) {
    throw new WorkloadApiError('ERR_WORKLOAD_API_RESPONSE_INVALID', `the Workload API sent an invalid ${what}: ${(err as Error).message}`, { cause: err })
  }
}

function parseX509Svid (message: X509SvidMessage, index: number): X509Svid {
  return parsing(`X509-SVID ${index} (${message.spiffe_id})`, () => {
    const id = parseSpiffeId(message.spiffe_id)
    const chain = splitConcatenatedDer(message.x509_svid)
    if (chain.length === 0) throw new Error('empty certificate chain')
    const key = createPrivateKey({ key: message.x509_svid_key, format: 'der', type: 'pkcs8' })
    // go-spiffe's x509svid.ParseRaw makes the same check: a key that does not match the leaf would fail every handshake.
    const spki = (k: KeyObject): Buffer => k.export({ type: 'spki', format: 'der' })
    if (!spki(createPublicKey(key)).equals(spki(new X509Certificate(chain[0]).publicKey))) throw new Error('the private key does not match the leaf certificate')
    return { spiffeId: id.toString(), chain, key, bundle: X509Bundle.fromDer(id.trustDomain, message.bundle), hint: message.hint }
  })
}

/** Bundle maps are keyed by trust-domain SPIFFE IDs (`spiffe://example.org`); ours by trust domain name. */
function parseBundleMap<B> (map: Record<string, Buffer>, parse: (trustDomain: TrustDomain, value: Buffer) => B): Map<string, B> {
  return new Map(Object.entries(map).map(([key, value]) => parsing(`bundle for ${JSON.stringify(key)}`, () => {
    const trustDomain = parseTrustDomain(key)
    return [trustDomain.name, parse(trustDomain, value)]
  })))
}

export function parseX509SvidResponse (message: X509SvidResponseMessage): X509SvidResponseParsed {
  if (message.svids.length === 0) throw new WorkloadApiError('ERR_WORKLOAD_API_RESPONSE_INVALID', 'the Workload API sent an X509-SVID response without SVIDs')
  return {
    svids: message.svids.map(parseX509Svid),
    federatedBundles: parseBundleMap(message.federated_bundles, (td, der) => X509Bundle.fromDer(td, der))
  }
}

export function parseX509Bundles (message: X509BundlesResponseMessage): Map<string, X509Bundle> {
  return parseBundleMap(message.bundles, (td, der) => X509Bundle.fromDer(td, der))
}

export function parseJwtBundles (message: JwtBundlesResponseMessage): Map<string, JwtBundle> {
  return parseBundleMap(message.bundles, (td, json) => JwtBundle.fromJwks(td, json.toString('utf8')))
}
