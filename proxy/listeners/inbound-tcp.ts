/**
 * An inbound TCP listener: accept → mutual TLS → verify and admit the peer → authorize (peer → ourselves, at the
 * app's port) → forward to the target in plain TCP on loopback, optionally after a PROXY protocol v2 header naming
 * the peer's SPIFFE ID.
 */
import type { Socket } from 'node:net'
import type { Server, TLSSocket } from 'node:tls'
import type { ListenerConfig } from '../config'
import type { HostPort } from '../host-port'
import type { IdentityState } from '../identity'
import type { SidecarServices } from '../services'
import { PeerAdmission } from '../steps/admit'
import type { AdmittedPeer } from '../steps/admit'
import { authorize } from '../steps/authorize'
import { pipeSockets } from '../steps/pipe'
import { proxyHeaderV2 } from '../steps/proxy-protocol'
import { mtlsServer } from '../steps/tls-server'

export function inboundTcpListener (services: SidecarServices, listener: ListenerConfig, state: IdentityState): Server {
  const admission = new PeerAdmission(services, listener)
  return mtlsServer(services, listener, state, socket => { forwardInboundTcp(services, listener, admission, socket, listener.target) })
}

/** Verify, admit, authorize, forward: one mutual-TLS connection of an inbound TCP listener, to `target`. */
export function forwardInboundTcp (services: SidecarServices, listener: ListenerConfig, admission: PeerAdmission, socket: TLSSocket, target: HostPort): void {
  socket.on('error', () => { socket.destroy() })
  const admitted = admission.accept(socket, target.port, false)
  if (admitted !== undefined) forwardAdmittedTcp(services, listener, admitted, socket, target)
}

/** Authorize and forward the connection of an admitted peer. */
export function forwardAdmittedTcp (services: SidecarServices, listener: ListenerConfig, admitted: AdmittedPeer, socket: Socket, target: HostPort): void {
  const request = { from: admitted.peer.id, to: admitted.self, port: target.port }
  if (!authorize(services, listener, request).allow) {
    socket.destroy()
    return
  }
  const upstream = services.dial(target, 'app')
  if (listener.proxyProtocol) upstream.write(proxyHeaderV2(socket, admitted.peer.id))
  upstream.once('error', (err: NodeJS.ErrnoException) => {
    services.logger.warn({ event: 'upstream_failed', listener: listener.name, target: `${target.host}:${target.port}`, err: err.message }, 'cannot reach the target')
  })
  services.tracker.add({ listener: listener.name, direction: 'inbound', request, sockets: [socket, upstream] })
  pipeSockets(services, listener, socket, upstream)
}
