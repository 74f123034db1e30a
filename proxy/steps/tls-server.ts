/**
 * The accept and TLS steps of an inbound listener: mutual TLS (TLS 1.2+, no renegotiation, a client certificate
 * requested), the context swapped on every SVID or bundle change (new handshakes only; established connections keep
 * theirs). OpenSSL does not reject the client's chain here: verify-peer.ts verifies it to the bundle of the peer's
 * own trust domain, which OpenSSL's single trust store cannot express.
 */
import { createServer as createTlsServer } from 'node:tls'
import type { Socket } from 'node:net'
import type { Server, TLSSocket } from 'node:tls'
import type { ListenerConfig } from '../config'
import type { IdentityState } from '../identity'
import type { SidecarServices } from '../services'
import { limitConnections } from './admit'
import { handshakeFailed } from './verify-peer'

function tlsServerOptions (services: SidecarServices, state: IdentityState): object {
  return { ...state.serverOptions, requestCert: true, rejectUnauthorized: false, handshakeTimeout: services.config.handshakeTimeoutMs }
}

/** Keeps the server's context current and reports failed handshakes. */
function attach<T extends Server> (services: SidecarServices, listener: ListenerConfig, server: T): T {
  const onChange = (state: IdentityState): void => { server.setSecureContext(state.serverOptions) }
  services.identity.on('change', onChange)
  server.on('close', () => { services.identity.off('change', onChange) })
  // A peer that resets mid-handshake leaves a destroyed socket without an address: read it (Node caches it on the
  // TCP socket) when the connection arrives, and take it from there.
  server.on('connection', (raw: Socket) => { void raw.remoteAddress })
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    const remote = socket.remoteAddress ?? (socket as unknown as { _parent?: Socket })._parent?.remoteAddress
    handshakeFailed(services, listener, err.code ?? 'tls-error', err.message, remote)
    socket.destroy() // with a listener here, Node leaves the socket (e.g. after a handshake timeout) to us
  })
  return limitConnections(services, listener, server)
}

export function mtlsServer (services: SidecarServices, listener: ListenerConfig, state: IdentityState, onSecure: (socket: TLSSocket) => void): Server {
  return attach(services, listener, createTlsServer(tlsServerOptions(services, state), onSecure))
}
