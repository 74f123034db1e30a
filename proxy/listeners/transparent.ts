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
import type { HostPort, ListenerConfig } from '../config'
import type { IdentityState } from '../identity'
import { forwardInboundTcp } from './inbound-tcp'
import { InboundHttp } from './inbound-http'
import { originalDestination } from '../steps/original-dst'
import { forwardOutboundTcp } from './outbound-tcp'
import { OutboundHttp } from './outbound-http'
import type { OutboundDestination } from './outbound-http'
import type { DrainableServer } from '../http1/connections'
import type { SidecarServices } from '../services'
import { MtlsConnector } from '../steps/tls-client'
import { mtlsServer } from '../steps/tls-server'

const LOOP = 'the connection came to the transparent port itself, not redirected by iptables (it would loop)'

function refuse (services: SidecarServices, listener: ListenerConfig, socket: Socket, why: string): void {
  services.logger.warn({ event: 'no_destination', listener: listener.name, remote: socket.remoteAddress, err: why }, 'cannot tell where the connection was going')
  socket.destroy()
}

export function transparentOutboundListener (services: SidecarServices, listener: ListenerConfig): DrainableServer {
  const connector = new MtlsConnector(services, listener)
  const destinations = new WeakMap<object, OutboundDestination>()
  const http = new OutboundHttp(services, listener, client => destinations.get(client) as OutboundDestination)
  const server = createServer({ noDelay: true }, client => {
    client.on('error', () => { client.destroy() })
    const target = originalDestination(client)
    if (typeof target === 'string' || (target.port === listener.listen.port && target.host.startsWith('127.'))) {
      refuse(services, listener, client, typeof target === 'string' ? target : LOOP)
      return
    }
    const destination = { target, expect: services.config.services[`${target.host}:${target.port}`], servicePort: target.port }
    if (services.config.httpPorts.has(target.port)) {
      destinations.set(client, destination)
      http.connections.serve(client)
    } else {
      void forwardOutboundTcp(services, listener, connector, () => destination, client)
    }
  })
  server.maxConnections = services.config.maxConnections
  return http.connections.drainable(server)
}

export function transparentInboundListener (services: SidecarServices, listener: ListenerConfig, state: IdentityState): DrainableServer {
  const http = new InboundHttp(services, listener)
  return http.connections.drainable(mtlsServer(services, listener, state, socket => {
    socket.on('error', () => { socket.destroy() })
    const original = originalDestination(socket)
    if (typeof original === 'string' || original.port === listener.listen.port) {
      refuse(services, listener, socket, typeof original === 'string' ? original : LOOP)
      return
    }
    const target: HostPort = { host: '127.0.0.1', port: original.port }
    if (!services.config.httpPorts.has(target.port)) forwardInboundTcp(services, listener, socket, () => target)
    else http.accept(socket, target)
  }))
}
