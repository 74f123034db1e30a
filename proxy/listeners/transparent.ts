/**
 * Transparent mode: the app connects to its real destination and iptables (init-iptables) redirects the
 * connection to the sidecar. Outbound, the sidecar opens mutual TLS to that same destination (where the peer's
 * sidecar intercepts it), expecting the ID the `services` map names for it, if any (the policy decides either
 * way). Inbound, it forwards to 127.0.0.1 at the port the peer was connecting to. Destination ports listed in
 * `httpPorts` are served in HTTP mode (per-request decisions; inbound, X-Forwarded-Client-Cert). A connection that
 * reached the listener without a redirect is refused: forwarding it would loop back into the sidecar.
 */
import { createServer } from 'node:net'
import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import type { ListenerConfig } from '../config'
import type { HostPort } from '../host-port'
import type { DrainableServer, HttpConnections } from '../http1/connections'
import type { IdentityState } from '../identity'
import type { SidecarServices } from '../services'
import { limitConnections, PeerAdmission } from '../steps/admit'
import type { AdmittedPeer } from '../steps/admit'
import { originalDestinationReader } from '../steps/original-dst'
import { MtlsConnector } from '../steps/tls-client'
import { mtlsServer } from '../steps/tls-server'
import { forwardAdmittedTcp, forwardInboundTcp } from './inbound-tcp'
import { InboundHttp } from './inbound-http'
import { forwardOutboundTcp } from './outbound-tcp'
import type { OutboundDestination } from './outbound-tcp'
import { OutboundHttp } from './outbound-http'
import { handOff } from './same-device'
import type { SameDeviceApp } from './same-device'

const LOOP = 'the connection came to the transparent port itself, not redirected by iptables (it would loop)'

export function refuse (services: SidecarServices, listener: ListenerConfig, socket: Socket, why: string): void {
  services.logger.warn({ event: 'no_destination', listener: listener.name, remote: socket.remoteAddress, err: why }, 'cannot tell where the connection was going')
  socket.destroy()
}

export function transparentOutboundListener (services: SidecarServices, listener: ListenerConfig): DrainableServer {
  const originalDestination = originalDestinationReader()
  const connector = new MtlsConnector(services, listener)
  const http = new OutboundHttp<OutboundDestination>(services, listener, (_head, destination) => destination)
  const lend = (socket: Socket): void => { http.connections.lend(socket) }
  const server = createServer({ noDelay: true }, client => {
    client.on('error', () => { client.destroy() })
    const target = originalDestination(client)
    if (typeof target === 'string' || (target.port === listener.listen.port && target.host.startsWith('127.'))) {
      refuse(services, listener, client, typeof target === 'string' ? target : LOOP)
      return
    }
    const destination = { target, expect: services.config.services[`${target.host}:${target.port}`], servicePort: target.port }
    const sameDevice = services.sameDevice?.(target)
    if (sameDevice !== undefined) handOff(services, listener, connector, destination, sameDevice, client, lend)
    else if (services.config.httpPorts.has(target.port)) http.connections.serve(client, destination)
    else void forwardOutboundTcp(services, listener, connector, destination, client)
  })
  return http.connections.drainable(limitConnections(services, listener, server))
}

export function transparentInboundListener (services: SidecarServices, listener: ListenerConfig, state: IdentityState): DrainableServer {
  const originalDestination = originalDestinationReader()
  const inbound = inboundAtPort(services, listener)
  return inbound.drainable(mtlsServer(services, listener, state, socket => {
    socket.on('error', () => { socket.destroy() })
    const original = originalDestination(socket)
    if (typeof original === 'string' || original.port === listener.listen.port) {
      refuse(services, listener, socket, typeof original === 'string' ? original : LOOP)
      return
    }
    inbound.serve(socket, original.port)
  }))
}

/**
 * Serves an inbound connection as if it had arrived at the app's `port`: HTTP mode for `httpPorts`, else TCP.
 * `serveAdmitted` serves one whose peer was admitted already, screening it for `port` first when HTTP;
 * `serveSameDevice`, one node mode hands over from another app it serves (`serve` of a SameDeviceApp), unscreened.
 */
export interface InboundAtPort {
  serve: (socket: TLSSocket, port: number) => void
  serveAdmitted: (socket: TLSSocket, port: number, admitted: AdmittedPeer) => void
  serveSameDevice: SameDeviceApp['serve']
  /** The proxy's own ports: a connection for one of them would loop back into the proxy. */
  readonly ownPorts: ReadonlySet<number>
  readonly admission: PeerAdmission
  readonly drainable: HttpConnections<unknown>['drainable']
}

export function inboundAtPort (services: SidecarServices, listener: ListenerConfig): InboundAtPort {
  const admission = new PeerAdmission(services, listener)
  const http = new InboundHttp(services, listener, admission)
  const local = (port: number): HostPort => ({ host: '127.0.0.1', port })
  const ownPorts = new Set(services.config.listeners.map(l => l.listen.port))
  /** `screen`: refuse a peer no rule can allow at an HTTP port, before it sends a request. */
  const serveAdmitted = (socket: Socket, port: number, admitted: AdmittedPeer, screen: boolean): void => {
    if (!services.config.httpPorts.has(port)) forwardAdmittedTcp(services, listener, admitted, socket, local(port))
    else if (!screen || admission.screen(socket, admitted.peer.id, admitted.self, port)) http.serveAdmitted(socket, local(port), admitted.peer, port)
    else socket.destroy()
  }
  return {
    admission,
    ownPorts,
    drainable: http.connections.drainable.bind(http.connections),
    serve: (socket, port) => {
      // The peer called the app's port: iptables sent it here, or (tunnel) the header named it.
      if (services.config.httpPorts.has(port)) http.accept(socket, local(port), port)
      else forwardInboundTcp(services, listener, admission, socket, local(port))
    },
    serveAdmitted: (socket, port, admitted) => { serveAdmitted(socket, port, admitted, true) },
    // Not screened: a denied request of the app next door gets its 403, as the caller's own side would answer it
    // through the tunnel; the caller still holds no more than its maxConnectionsPerPeer.
    serveSameDevice: (socket, port, caller) => {
      if (ownPorts.has(port)) return refuse(services, listener, socket, `the caller called port ${port}, one of the proxy's own (it would loop)`)
      const admitted = admission.admit(socket, caller, port, false)
      if (admitted !== undefined) serveAdmitted(socket, port, admitted, false)
    }
  }
}
