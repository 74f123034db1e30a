/**
 * The Delegated Identity API's messages (spiffe/delegated-identity.proto, as proto-loader decodes them) and their
 * parsing into the Workload API client's types where the shapes agree. Anything malformed is
 * ERR_DELEGATED_IDENTITY_API_RESPONSE_INVALID naming the defect: a server bug, not the caller's.
 */
import { parseJwtBundleMap, parsing, parseX509BundleMap, privateKeyOfLeaf } from './api-message-parsing'
import { DelegatedIdentityApiError } from './delegated-identity-api-error'
import { splitConcatenatedDer } from './der'
import { parseTrustDomain } from './id'
import type { SpiffeId } from './id'
import type { JwtBundle } from './jwt-bundle'
import type { X509Bundle } from './x509-bundle'
import { parseCertificate } from './x509-cert'
import { spiffeIdOfLeaf } from './x509-svid-leaf'
import type { JwtSvidParsed, X509Svid } from './workload-client'

export interface SelectorMessage { type: string, value: string }
interface SpiffeIdMessage { trust_domain: string, path: string }
interface X509SvidMessage { id: SpiffeIdMessage | null, cert_chain: Buffer[], expires_at: number, hint: string }
interface JwtSvidMessage { token: string, id: SpiffeIdMessage | null, expires_at: number, issued_at: number, hint: string }
export interface X509SvidsResponseMessage { x509_svids: Array<{ x509_svid: X509SvidMessage | null, x509_svid_key: Buffer }>, federates_with: string[] }
export interface X509BundlesResponseMessage { ca_certificates: Record<string, Buffer> }
export interface JwtSvidsResponseMessage { svids: JwtSvidMessage[] }
export interface JwtBundlesResponseMessage { bundles: Record<string, Buffer> }

/**
 * An X509-SVID of a delegated workload: as the Workload API's, but without a bundle (the API sends bundles on their
 * own stream). The leaf's NotAfter is authoritative; the message's `expires_at` only repeats it.
 */
export type DelegatedX509Svid = Omit<X509Svid, 'bundle'>

/** One state of a workload's SubscribeToX509SVIDs stream: the whole set, again on every change. */
export interface DelegatedX509SvidUpdate {
  /**
   * The workload's SVIDs with their keys, in the agent's order; empty when the agent has none for it (no entry
   * matches it, yet or any more). SPIRE leaves out admin and downstream entries.
   */
  svids: DelegatedX509Svid[]
  /** The names of the trust domains the workload's entries federate with (SPIRE sends `spiffe://td`). */
  federatesWith: string[]
}

export interface DelegatedJwtSvid extends JwtSvidParsed {
  expiresAt: Date
  issuedAt: Date
}

function invalidFrom (address: string) {
  return (what: string, cause: Error): DelegatedIdentityApiError => new DelegatedIdentityApiError('ERR_DELEGATED_IDENTITY_API_RESPONSE_INVALID',
    `the Delegated Identity API at ${address} sent an invalid ${what}: ${cause.message}`, { cause })
}

/** The SPIFFEID message (trust domain name, path) of a workload, which must name one (have a path). */
function spiffeIdOf (message: SpiffeIdMessage | null): SpiffeId {
  if (message === null) throw new Error('its SPIFFE ID is missing')
  const id = parseTrustDomain(message.trust_domain).id(message.path)
  if (!id.hasPath) throw new Error(`${id.toString()} has no path, so it names no workload`)
  return id
}

const label = (id: SpiffeIdMessage | null | undefined): string => id === null || id === undefined ? 'no ID' : `${id.trust_domain}${id.path}`

function parseX509Svid (message: X509SvidsResponseMessage['x509_svids'][number], index: number, address: string): DelegatedX509Svid {
  const svid = message.x509_svid
  return parsing(`X509-SVID ${index} (${label(svid?.id)})`, invalidFrom(address), () => {
    if (svid === null) throw new Error('x509_svid is missing')
    const id = spiffeIdOf(svid.id)
    if (svid.cert_chain.length === 0) throw new Error('empty certificate chain')
    const chain = svid.cert_chain.map((der, i) => {
      const certs = splitConcatenatedDer(der)
      if (certs.length !== 1) throw new Error(`cert_chain[${i}] holds ${certs.length} certificates, not one`)
      return certs[0]
    })
    const leaf = parseCertificate(chain[0])
    const leafId = spiffeIdOfLeaf(leaf)
    if (!leafId.equals(id)) throw new Error(`its leaf certificate is ${leafId.toString()}'s, not ${id.toString()}'s`)
    return { spiffeId: id.toString(), chain, key: privateKeyOfLeaf(message.x509_svid_key, leaf.x509), hint: svid.hint }
  })
}

export function parseX509SvidsResponse (message: X509SvidsResponseMessage, address: string): DelegatedX509SvidUpdate {
  const svids = message.x509_svids.map((svid, index) => parseX509Svid(svid, index, address))
  const federatesWith = message.federates_with.map(td => parsing(`federates_with entry ${JSON.stringify(td)}`, invalidFrom(address), () => parseTrustDomain(td).name))
  return { svids, federatesWith: [...new Set(federatesWith)] }
}

export function parseX509BundlesResponse (message: X509BundlesResponseMessage, address: string): Map<string, X509Bundle> {
  return parseX509BundleMap(message.ca_certificates, invalidFrom(address))
}

export function parseJwtBundlesResponse (message: JwtBundlesResponseMessage, address: string): Map<string, JwtBundle> {
  return parseJwtBundleMap(message.bundles, invalidFrom(address))
}

/** Loads jose only when JWT-SVIDs are asked for: a node proxy asks for X509-SVIDs alone, and jose is 0.9 MB of heap. */
export async function parseJwtSvidsResponse (message: JwtSvidsResponseMessage, address: string): Promise<DelegatedJwtSvid[]> {
  const { decodeJwt } = await import('jose')
  return message.svids.map((svid, index) => parsing(`JWT-SVID ${index} (${label(svid.id)})`, invalidFrom(address), () => {
    const id = spiffeIdOf(svid.id)
    if (svid.token === '') throw new Error('the token is empty')
    // The token is verified by whoever receives it; here it must at least be a JWT naming the same workload.
    const subject = decodeJwt(svid.token).sub
    if (subject !== id.toString()) throw new Error(`its token's subject is ${JSON.stringify(subject)}, not ${id.toString()}`)
    return { spiffeId: id.toString(), token: svid.token, hint: svid.hint, expiresAt: new Date(svid.expires_at * 1000), issuedAt: new Date(svid.issued_at * 1000) }
  }))
}
