/**
 * Transparent mode: the app connects to its real destination and iptables (init-iptables) redirects the
 * connection to the sidecar. Outbound, the sidecar opens mutual TLS to that same destination (where the peer's
 * sidecar intercepts it), expecting the ID the `services` map names for it, if any (the policy decides either
 * way). Inbound, it forwards to 127.0.0.1 at the port the peer was connecting to. A connection that reached the
 * listener without a redirect is refused: forwarding it would loop back into the sidecar.
 */
import type { Server } from 'node:net'
import type { ListenerConfig } from './config'
import type { IdentityState } from './identity'
import { inboundTcpListener } from './inbound-tcp'
import { originalDestination } from './original-dst'
import { outboundTcpListener } from './outbound-tcp'
import type { SidecarServices } from './services'

const LOOP = 'the connection came to the transparent port itself, not redirected by iptables (it would loop)'

export function transparentOutboundListener (services: SidecarServices, listener: ListenerConfig): Server {
  return outboundTcpListener(services, listener, client => {
    const destination = originalDestination(client)
    if (typeof destination === 'string') return destination
    if (destination.port === listener.listen.port && destination.host.startsWith('127.')) return LOOP
    return { target: destination, expect: services.config.services[`${destination.host}:${destination.port}`] }
  })
}

export function transparentInboundListener (services: SidecarServices, listener: ListenerConfig, state: IdentityState): Server {
  return inboundTcpListener(services, listener, state, socket => {
    const destination = originalDestination(socket)
    if (typeof destination === 'string') return destination
    if (destination.port === listener.listen.port) return LOOP
    return { host: '127.0.0.1', port: destination.port }
  })
}
