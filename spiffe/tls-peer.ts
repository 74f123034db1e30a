/**
 * SPIFFE peer checks for Node's `tls`: hostname verification is replaced by SPIFFE ID verification (never simply
 * switched off). Clients pass `spiffeCheckServerIdentity(...)` as `checkServerIdentity`; servers call
 * `verifyTlsPeer(socket, ...)` on each connection.
 */
import type { DetailedPeerCertificate, PeerCertificate, TLSSocket } from 'node:tls'
import { X509SvidError } from './errors'
import type { SpiffeId } from './id'
import type { X509BundleSource } from './bundle-source'
import { verifyX509Svid } from './x509-svid'

/**
 * Which peer is acceptable: an exact ID (string or SpiffeId) or a predicate (which may carry a `description` of
 * what it accepts, for error messages); undefined accepts any verified peer.
 */
export type ExpectedPeer = string | SpiffeId | (((id: SpiffeId) => boolean) & { description?: string })

/** The certificates of a peer, leaf first, from Node's detailed peer certificate (following issuerCertificate links). */
export function peerChainOf (cert: PeerCertificate | DetailedPeerCertificate): Buffer[] {
  const chain: Buffer[] = []
  const seen = new Set<PeerCertificate>()
  let current: PeerCertificate | undefined = cert
  // Node links a self-signed root to itself; stop at the first repeat.
  while (current?.raw !== undefined && !seen.has(current)) {
    seen.add(current)
    chain.push(current.raw)
    current = (current as Partial<DetailedPeerCertificate>).issuerCertificate
  }
  return chain
}

/** Verifies a peer chain and, when `expected` is given, that the verified ID is acceptable. */
export function verifyPeerChain (chain: Buffer[], bundles: X509BundleSource, expected?: ExpectedPeer): SpiffeId {
  const id = verifyX509Svid(chain, bundles)
  if (expected !== undefined) checkExpectedPeer(id, expected)
  return id
}

/** Throws ERR_X509_SVID_ID_MISMATCH unless `expected` accepts the peer's `id`. */
export function checkExpectedPeer (id: SpiffeId, expected: ExpectedPeer): void {
  if (matches(id, expected)) return
  const wanted = typeof expected === 'function' ? expected.description ?? 'an ID the caller accepts' : expected.toString()
  throw new X509SvidError('ERR_X509_SVID_ID_MISMATCH', `peer is ${id.toString()}, expected ${wanted}`)
}

function matches (id: SpiffeId, expected: ExpectedPeer): boolean {
  return typeof expected === 'function' ? expected(id) : id.equals(expected)
}

/**
 * A `checkServerIdentity` for tls.connect: re-verifies the server's chain against its own trust domain's bundle
 * (OpenSSL's `ca` check may have used any trust domain's roots) and checks its SPIFFE ID instead of the hostname.
 * Node does not call it for a resumed session, so a client that resumes must keep its sessions per expected peer
 * (a session verified for one ID must never be offered to a connection expecting another).
 */
export function spiffeCheckServerIdentity (bundles: X509BundleSource, expected?: ExpectedPeer): (hostname: string, cert: PeerCertificate) => Error | undefined {
  return (_hostname, cert) => {
    try {
      verifyPeerChain(peerChainOf(cert), bundles, expected)
      return undefined
    } catch (err) {
      return err as Error
    }
  }
}

/** Verifies the peer of an established TLS connection (typically a server's client) and returns its SPIFFE ID. */
export function verifyTlsPeer (socket: TLSSocket, bundles: X509BundleSource, expected?: ExpectedPeer): SpiffeId {
  return verifyPeerChain(peerChainOf(socket.getPeerCertificate(true)), bundles, expected)
}
