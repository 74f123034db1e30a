/**
 * The Workload API's response messages (spiffe/workload.proto, as proto-loader decodes them) and their parsing into
 * our types. Anything malformed is ERR_WORKLOAD_API_RESPONSE_INVALID: a server bug, not the caller's.
 */
import type { KeyObject } from 'node:crypto'
import { parseJwtBundleMap, parsing, parseX509BundleMap, privateKeyOfLeaf } from './api-message-parsing'
import { splitConcatenatedDer } from './der'
import { parseSpiffeId } from './id'
import type { JwtBundle } from './jwt-bundle'
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

function invalid (what: string, cause: Error): WorkloadApiError {
  return new WorkloadApiError('ERR_WORKLOAD_API_RESPONSE_INVALID', `the Workload API sent an invalid ${what}: ${cause.message}`, { cause })
}

function parseX509Svid (message: X509SvidMessage, index: number): X509Svid {
  return parsing(`X509-SVID ${index} (${message.spiffe_id})`, invalid, () => {
    const id = parseSpiffeId(message.spiffe_id)
    const chain = splitConcatenatedDer(message.x509_svid)
    if (chain.length === 0) throw new Error('empty certificate chain')
    const key = privateKeyOfLeaf(message.x509_svid_key, chain[0])
    return { spiffeId: id.toString(), chain, key, bundle: X509Bundle.fromDer(id.trustDomain, message.bundle), hint: message.hint }
  })
}

export function parseX509SvidResponse (message: X509SvidResponseMessage): X509SvidResponseParsed {
  if (message.svids.length === 0) throw new WorkloadApiError('ERR_WORKLOAD_API_RESPONSE_INVALID', 'the Workload API sent an X509-SVID response without SVIDs')
  return {
    svids: message.svids.map(parseX509Svid),
    federatedBundles: parseX509BundleMap(message.federated_bundles, invalid)
  }
}

export function parseX509Bundles (message: X509BundlesResponseMessage): Map<string, X509Bundle> {
  return parseX509BundleMap(message.bundles, invalid)
}

export function parseJwtBundles (message: JwtBundlesResponseMessage): Map<string, JwtBundle> {
  return parseJwtBundleMap(message.bundles, invalid)
}
