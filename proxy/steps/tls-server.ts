/**
 * The accept and TLS steps of an inbound listener: mutual TLS (TLS 1.2+, no renegotiation, a client certificate
 * requested, handshakes under way limited per address), the context swapped on every SVID or bundle change (new handshakes only; established connections keep
 * theirs). OpenSSL does not reject the client's chain here: verify-peer.ts verifies it to the bundle of the peer's
 * own trust domain, which OpenSSL's single trust store cannot express.
 */
import { createServer as createTlsServer } from 'node:tls'
import type { Socket } from 'node:net'
import type { Server, TLSSocket } from 'node:tls'
import type { ListenerConfig } from '../config'
import type { IdentityState } from '../identity'
import type { SidecarServices } from '../services'
import { HandshakeSlots, limitConnections } from './admit'
import { handshakeFailed } from './verify-peer'

function tlsServerOptions (services: SidecarServices, state: IdentityState): object {
  return { ...state.serverOptions, requestCert: true, rejectUnauthorized: false, handshakeTimeout: services.config.handshakeTimeoutMs }
}

/** The TCP socket beneath a server-side TLS socket. */
function rawSocketOf (socket: TLSSocket): Socket | undefined {
  return (socket as unknown as { _parent?: Socket })._parent
}

/** Keeps the server's context current, limits handshakes per address and reports failed ones. */
function attach<T extends Server> (services: SidecarServices, listener: ListenerConfig, server: T, handshakes: HandshakeSlots): T {
  const onChange = (state: IdentityState): void => { server.setSecureContext(state.serverOptions) }
  services.identity.on('change', onChange)
  server.on('close', () => { services.identity.off('change', onChange) })
  // Reading the address here also keeps it: a peer that resets mid-handshake leaves a destroyed socket without one
  // (Node caches it on the TCP socket), and the failure is logged from there.
  server.on('connection', (raw: Socket) => { handshakes.opened(raw) })
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    const remote = socket.remoteAddress ?? rawSocketOf(socket)?.remoteAddress
    handshakeFailed(services, listener, err.code ?? 'tls-error', err.message, remote)
    socket.destroy() // with a listener here, Node leaves the socket (e.g. after a handshake timeout) to us
  })
  return limitConnections(services, listener, server)
}

export function mtlsServer (services: SidecarServices, listener: ListenerConfig, state: IdentityState, onSecure: (socket: TLSSocket) => void): Server {
  const handshakes = new HandshakeSlots(services, listener)
  const server = createTlsServer(tlsServerOptions(services, state), socket => {
    handshakes.handshakeDone(rawSocketOf(socket))
    onSecure(socket)
  })
  return attach(services, listener, server, handshakes)
}
