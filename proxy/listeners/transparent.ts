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
import type { ListenerConfig } from '../config'
import type { DrainableServer } from '../http1/connections'
import type { IdentityState } from '../identity'
import type { SidecarServices } from '../services'
import { limitConnections, PeerAdmission } from '../steps/admit'
import { originalDestinationReader } from '../steps/original-dst'
import { MtlsConnector } from '../steps/tls-client'
import { mtlsServer } from '../steps/tls-server'
import { forwardInboundTcp } from './inbound-tcp'
import { InboundHttp } from './inbound-http'
import { forwardOutboundTcp } from './outbound-tcp'
import type { OutboundDestination } from './outbound-tcp'
import { OutboundHttp } from './outbound-http'

const LOOP = 'the connection came to the transparent port itself, not redirected by iptables (it would loop)'

function refuse (services: SidecarServices, listener: ListenerConfig, socket: Socket, why: string): void {
  services.logger.warn({ event: 'no_destination', listener: listener.name, remote: socket.remoteAddress, err: why }, 'cannot tell where the connection was going')
  socket.destroy()
}

export function transparentOutboundListener (services: SidecarServices, listener: ListenerConfig): DrainableServer {
  const originalDestination = originalDestinationReader()
  const connector = new MtlsConnector(services, listener)
  const http = new OutboundHttp<OutboundDestination>(services, listener, (_head, destination) => destination)
  const server = createServer({ noDelay: true }, client => {
    client.on('error', () => { client.destroy() })
    const target = originalDestination(client)
    if (typeof target === 'string' || (target.port === listener.listen.port && target.host.startsWith('127.'))) {
      refuse(services, listener, client, typeof target === 'string' ? target : LOOP)
      return
    }
    const destination = { target, expect: services.config.services[`${target.host}:${target.port}`], servicePort: target.port }
    if (services.config.httpPorts.has(target.port)) http.connections.serve(client, destination)
    else void forwardOutboundTcp(services, listener, connector, destination, client)
  })
  return http.connections.drainable(limitConnections(services, listener, server))
}

export function transparentInboundListener (services: SidecarServices, listener: ListenerConfig, state: IdentityState): DrainableServer {
  const originalDestination = originalDestinationReader()
  const admission = new PeerAdmission(services, listener)
  const http = new InboundHttp(services, listener, admission)
  return http.connections.drainable(mtlsServer(services, listener, state, socket => {
    socket.on('error', () => { socket.destroy() })
    const original = originalDestination(socket)
    if (typeof original === 'string' || original.port === listener.listen.port) {
      refuse(services, listener, socket, typeof original === 'string' ? original : LOOP)
      return
    }
    const target = { host: '127.0.0.1', port: original.port }
    if (services.config.httpPorts.has(target.port)) http.accept(socket, target)
    else forwardInboundTcp(services, listener, admission, socket, target)
  }))
}
