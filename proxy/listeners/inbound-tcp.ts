/**
 * An inbound TCP listener: accept → mutual TLS → verify the peer → authorize (peer → ourselves, at the target's
 * port) → forward to the target in plain TCP on loopback, optionally after a PROXY protocol v2 header naming the
 * peer's SPIFFE ID.
 */
import { connect } from 'node:net'
import type { Server, TLSSocket } from 'node:tls'
import type { HostPort, ListenerConfig } from '../config'
import { authorize } from '../steps/authorize'
import type { IdentityState } from '../identity'
import { pipeSockets } from '../steps/pipe'
import { proxyHeaderV2 } from '../steps/proxy-protocol'
import type { SidecarServices } from '../services'
import { verifyPeer } from '../steps/verify-peer'
import { mtlsServer } from '../steps/tls-server'

/** Where a connection goes: the listener's target, or (transparent mode) the port it was sent to, or why not. */
export type InboundTarget = (socket: TLSSocket) => HostPort | string

export function inboundTcpListener (services: SidecarServices, listener: ListenerConfig, state: IdentityState): Server {
  return mtlsServer(services, listener, state, socket => { forwardInboundTcp(services, listener, socket, () => listener.target) })
}

/** Verify, authorize, forward: one mutual-TLS connection of an inbound TCP listener. */
export function forwardInboundTcp (services: SidecarServices, listener: ListenerConfig, socket: TLSSocket, targetOf: InboundTarget): void {
  socket.on('error', () => { socket.destroy() })
  const target = targetOf(socket)
  if (typeof target === 'string') {
    services.logger.warn({ event: 'no_destination', listener: listener.name, remote: socket.remoteAddress, err: target }, 'cannot tell where the connection was going')
    socket.destroy()
    return
  }
  const peer = verifyPeer(services, listener, socket)?.id
  const self = services.identity.current?.context.spiffeId
  if (peer === undefined || self === undefined) {
    socket.destroy()
    return
  }
  const request = { from: peer, to: self, port: target.port }
  if (!authorize(services, listener, request).allow) {
    socket.destroy()
    return
  }
  const upstream = connect(target)
  if (listener.proxyProtocol) upstream.write(proxyHeaderV2(socket, peer))
  upstream.once('error', (err: NodeJS.ErrnoException) => {
    services.logger.warn({ event: 'upstream_failed', listener: listener.name, target: `${target.host}:${target.port}`, err: err.message }, 'cannot reach the target')
  })
  services.tracker.add({ listener: listener.name, direction: 'inbound', request, sockets: [socket, upstream] })
  pipeSockets(services, listener, socket, upstream)
}
