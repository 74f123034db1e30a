/**
 * The TLS step's check, the same inbound and outbound: the peer's chain verified to the bundle of its own trust
 * domain (spiffe/), never by hostname; a failure is counted and logged with the certificate problem named.
 */
import type { TLSSocket } from 'node:tls'
import { ChaperoneError } from '../../spiffe/errors'
import type { SpiffeId } from '../../spiffe/id'
import { peerChainOf, verifyPeerChain } from '../../spiffe/tls-peer'
import { parseCertificateCached } from '../../spiffe/x509-cert-cache'
import type { ExpectedPeer } from '../../spiffe/tls-peer'
import type { ListenerConfig } from '../config'
import type { SidecarServices } from '../services'

export interface VerifiedPeer {
  readonly id: SpiffeId
  readonly chain: Buffer[]
  /** When the peer's certificate expires (ms since the epoch). */
  readonly notAfter: number
}

/**
 * The verified peer, or undefined after logging why it was refused (the caller closes the socket). A client's
 * resumed session shows no server certificate at all, so the client passes the chain it verified when the
 * session was made (`knownChain`), and it is verified again.
 */
export function verifyPeer (services: SidecarServices, listener: ListenerConfig, socket: TLSSocket, expected?: ExpectedPeer, knownChain?: Buffer[]): VerifiedPeer | undefined {
  const state = services.identity.current
  if (state === undefined) {
    handshakeFailed(services, listener, 'no-svid', 'no SVID yet from the Workload API', socket.remoteAddress)
    return undefined
  }
  try {
    const resumed = socket.isSessionReused()
    const presented = resumed ? leafOf(socket) : peerChainOf(socket.getPeerCertificate(true))
    const chain = resumed && presented.length === 0 && knownChain !== undefined ? knownChain : services.peerChains.chainFor(presented, resumed)
    const id = verifyPeerChain(chain, state.context.bundles, expected)
    return { id, chain, notAfter: parseCertificateCached(chain[0]).notAfter.getTime() }
  } catch (err) {
    const code: string = err instanceof ChaperoneError ? (err as ChaperoneError).code : (err as NodeJS.ErrnoException).code ?? 'tls-error'
    // Inbound peers are named by address (the rate-limit key); outbound servers by address and port, as the target.
    const remote = listener.direction === 'inbound' ? socket.remoteAddress : `${socket.remoteAddress ?? ''}:${socket.remotePort ?? ''}`
    handshakeFailed(services, listener, code, (err as Error).message, remote)
    return undefined
  }
}

/**
 * The certificate of a resumed session: OpenSSL keeps only the peer's leaf in a session, so there is no chain to
 * walk. `getPeerCertificate(true)` would still build an object of every field, and search the context's store for
 * issuers, on a certificate freshly decoded from the ticket: about a tenth of a resumed connection's CPU.
 */
function leafOf (socket: TLSSocket): Buffer[] {
  const leaf = socket.getPeerX509Certificate()
  return leaf === undefined ? [] : [leaf.raw]
}

/** Counts and logs (rate-limited per remote address) a handshake or peer verification that failed. */
export function handshakeFailed (services: SidecarServices, listener: ListenerConfig, reason: string, message: string, remote: string | undefined): void {
  services.metrics.handshakeFailures.inc({ listener: listener.name, reason })
  services.limitedLog.warn(`handshake ${listener.name} ${remote ?? ''} ${reason}`, {
    event: 'handshake_failed', listener: listener.name, direction: listener.direction, remote, reason, err: message
  }, 'TLS handshake or peer verification failed')
}
