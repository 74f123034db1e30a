/**
 * An inbound TCP listener: accept → mutual TLS → verify the peer → authorize (peer → ourselves, at the target's
 * port) → forward to the target in plain TCP on loopback, optionally after a PROXY protocol v2 header naming the
 * peer's SPIFFE ID.
 */
import { connect } from 'node:net'
import type { Server, TLSSocket } from 'node:tls'
import type { ListenerConfig } from './config'
import { authorize } from './authorize'
import type { IdentityState } from './identity'
import { pipeSockets } from './pipe'
import { proxyHeaderV2 } from './proxy-protocol'
import type { SidecarServices } from './services'
import { verifyPeer } from './verify-peer'
import { mtlsServer } from './tls-server'

export function inboundTcpListener (services: SidecarServices, listener: ListenerConfig, state: IdentityState): Server {
  return mtlsServer(services, listener, state, socket => { onSecure(services, listener, socket) })
}

function onSecure (services: SidecarServices, listener: ListenerConfig, socket: TLSSocket): void {
  socket.on('error', () => { socket.destroy() })
  const peer = verifyPeer(services, listener, socket)?.id
  const self = services.identity.current?.context.spiffeId
  if (peer === undefined || self === undefined) {
    socket.destroy()
    return
  }
  const request = { from: peer, to: self, port: listener.target.port }
  if (!authorize(services, listener, request).allow) {
    socket.destroy()
    return
  }
  const upstream = connect(listener.target)
  if (listener.proxyProtocol) upstream.write(proxyHeaderV2(socket, peer))
  upstream.once('error', (err: NodeJS.ErrnoException) => {
    services.logger.warn({ event: 'upstream_failed', listener: listener.name, target: `${listener.target.host}:${listener.target.port}`, err: err.message }, 'cannot reach the target')
  })
  services.tracker.add({ listener: listener.name, direction: 'inbound', request, sockets: [socket, upstream] })
  pipeSockets(services, listener, socket, upstream)
}
