/**
 * An outbound TCP listener: the app connects in plain TCP on loopback → mutual TLS to the target with our SVID →
 * verify the server (and `expect`) → authorize (ourselves → the server, at the service port: the destination app's
 * port, not the peer sidecar's) → pipe. The app's bytes wait in the socket's buffer until the server is verified and
 * allowed.
 */
import { createServer } from 'node:net'
import type { Server, Socket } from 'node:net'
import { matchesIdPattern, parseIdPattern } from '../../policy/id-pattern'
import type { IdPattern } from '../../policy/id-pattern'
import type { SpiffeId } from '../../spiffe/id'
import type { ExpectedPeer } from '../../spiffe/tls-peer'
import type { HostPort, ListenerConfig } from '../config'
import { authorize } from '../steps/authorize'
import { pipeSockets } from '../steps/pipe'
import type { SidecarServices } from '../services'
import { MtlsConnector, OutboundRefused } from '../steps/tls-client'

const expectations = new Map<string, ExpectedPeer>()

/**
 * `expect` as a peer check: an exact ID or a pattern of the policy's syntax. Parsed once per distinct `expect`,
 * not per connection (transparent mode's `services` map names a bounded set; the cache is bounded anyway).
 */
export function expectedPeer (expect: string | undefined): ExpectedPeer | undefined {
  if (expect === undefined) return undefined
  let expected = expectations.get(expect)
  if (expected === undefined) {
    const pattern = parseIdPattern(expect) as IdPattern
    if (expectations.size >= 1024) expectations.clear()
    expected = Object.assign((id: SpiffeId) => matchesIdPattern(pattern, id.toString()), { description: expect })
    expectations.set(expect, expected)
  }
  return expected
}

/**
 * Where a connection goes, which server ID to expect and the service port the policy decides at: the listener's,
 * or (transparent mode) the app's original destination, or why not.
 */
export type OutboundTarget = (client: Socket) => { target: HostPort, expect: string | undefined, servicePort: number } | string

export function outboundTcpListener (services: SidecarServices, listener: ListenerConfig): Server {
  const connector = new MtlsConnector(services, listener)
  const targetOf: OutboundTarget = () => ({ target: listener.target, expect: listener.expect, servicePort: listener.servicePort })
  const server = createServer({ noDelay: true }, client => { void forwardOutboundTcp(services, listener, connector, targetOf, client) })
  server.maxConnections = services.config.maxConnections
  return server
}

/** Mutual TLS out, verify, authorize, pipe: one connection from the app on an outbound TCP listener. */
export async function forwardOutboundTcp (services: SidecarServices, listener: ListenerConfig, connector: MtlsConnector, targetOf: OutboundTarget, client: Socket): Promise<void> {
  client.on('error', () => { client.destroy() })
  const self = services.identity.current?.context.spiffeId
  const destination = targetOf(client)
  if (typeof destination === 'string') {
    services.logger.warn({ event: 'no_destination', listener: listener.name, err: destination }, 'cannot tell where the connection was going')
    client.destroy()
    return
  }
  let connection
  try {
    if (self === undefined) throw new OutboundRefused('no SVID yet')
    connection = await connector.connect(expectedPeer(destination.expect), destination.expect, destination.target)
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
