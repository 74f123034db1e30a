/**
 * The TLS step's check, the same inbound and outbound: the peer's chain verified to the bundle of its own trust
 * domain (spiffe/), never by hostname; a failure is counted and logged with the certificate problem named.
 */
import type { TLSSocket } from 'node:tls'
import { ChaperoneError } from '../spiffe/errors'
import type { SpiffeId } from '../spiffe/id'
import { peerChainOf, verifyPeerChain } from '../spiffe/tls-peer'
import type { ExpectedPeer } from '../spiffe/tls-peer'
import type { ListenerConfig } from './config'
import { PeerChains } from './peer-chains'
import type { SidecarServices } from './services'

const chains = new PeerChains()

/** The verified peer ID, or undefined after logging why the peer was refused (the caller closes the socket). */
export function verifyPeer (services: SidecarServices, listener: ListenerConfig, socket: TLSSocket, expected?: ExpectedPeer): SpiffeId | undefined {
  const state = services.identity.current
  if (state === undefined) {
    handshakeFailed(services, listener, 'no-svid', 'no SVID yet from the Workload API', socket.remoteAddress)
    return undefined
  }
  try {
    const chain = chains.chainFor(peerChainOf(socket.getPeerCertificate(true)), socket.isSessionReused())
    return verifyPeerChain(chain, state.context.bundles, expected)
  } catch (err) {
    const code: string = err instanceof ChaperoneError ? (err as ChaperoneError).code : (err as NodeJS.ErrnoException).code ?? 'tls-error'
    handshakeFailed(services, listener, code, (err as Error).message, socket.remoteAddress)
    return undefined
  }
}

/** Counts and logs (rate-limited per remote address) a handshake or peer verification that failed. */
export function handshakeFailed (services: SidecarServices, listener: ListenerConfig, reason: string, message: string, remote: string | undefined): void {
  services.metrics.handshakeFailures.inc({ listener: listener.name, reason })
  services.limitedLog.warn(`handshake ${listener.name} ${remote ?? ''} ${reason}`, {
    event: 'handshake_failed', listener: listener.name, direction: listener.direction, remote, reason, err: message
  }, 'TLS handshake or peer verification failed')
}
