/**
 * An outbound TCP listener: the app connects in plain TCP on loopback → mutual TLS to the target with our SVID →
 * verify the server (and `expect`) → authorize (ourselves → the server, at the service's port) → pipe. The app's
 * bytes wait in the socket's buffer until the server is verified and allowed.
 */
import { createServer } from 'node:net'
import type { Server, Socket } from 'node:net'
import type { ListenerConfig } from '../config'
import type { HostPort } from '../host-port'
import type { SidecarServices } from '../services'
import { limitConnections } from '../steps/admit'
import { authorize } from '../steps/authorize'
import { pipeSockets } from '../steps/pipe'
import { MtlsConnector, OutboundRefused } from '../steps/tls-client'

/**
 * Where an outbound connection or request goes, the server ID (or pattern) expected there, and the service port
 * the policy decides at: the destination app's port, not the peer sidecar's.
 */
export interface OutboundDestination { readonly target: HostPort, readonly expect: string | undefined, readonly servicePort: number }

/** A fixed outbound listener's destination. */
export function fixedDestination (listener: ListenerConfig): OutboundDestination {
  return Object.freeze({ target: listener.target, expect: listener.expect, servicePort: listener.servicePort })
}

export function outboundTcpListener (services: SidecarServices, listener: ListenerConfig): Server {
  const connector = new MtlsConnector(services, listener)
  const destination = fixedDestination(listener)
  return limitConnections(services, listener, createServer({ noDelay: true }, client => { void forwardOutboundTcp(services, listener, connector, destination, client) }))
}

/** Mutual TLS out, verify, authorize, pipe: one connection from the app on an outbound TCP listener. */
export async function forwardOutboundTcp (services: SidecarServices, listener: ListenerConfig, connector: MtlsConnector, destination: OutboundDestination, client: Socket): Promise<void> {
  client.on('error', () => { client.destroy() })
  const self = services.identity.current?.context.spiffeId
  let connection
  try {
    if (self === undefined) throw new OutboundRefused('no SVID yet')
    connection = await connector.connect(destination.target, destination.expect)
  } catch (err) {
    if (!(err instanceof OutboundRefused)) services.logger.error({ event: 'outbound_failed', listener: listener.name, err: (err as Error).message }, 'outbound connection failed')
    client.destroy()
    return
  }
  const request = { from: self, to: connection.serverId, port: destination.servicePort }
  if (client.destroyed || !authorize(services, listener, request).allow) {
    connection.socket.destroy()
    client.destroy()
    return
  }
  services.tracker.add({ listener: listener.name, direction: 'outbound', request, sockets: [client, connection.socket] })
  pipeSockets(services, listener, client, connection.socket)
}
