/**
 * An explicit HTTP proxy listener, for apps that honour HTTP_PROXY / HTTPS_PROXY: an absolute-form request
 * (`GET http://host:port/path`) is forwarded, and `CONNECT host:port` opens a tunnel. Either way the destination is
 * reached over mutual TLS (where its sidecar listens), its SPIFFE ID verified, and the policy decides (ourselves →
 * that ID; with method and path for forwarded requests, so a pair allowed only some HTTP requests cannot tunnel) at
 * the port the app named, which should therefore be the service's own port (e.g. a transparent inbound listener on
 * the server's side). Requests are read and re-framed by the same HTTP/1.1 engine as every HTTP listener.
 */
import { createServer } from 'node:net'
import type { Server } from 'node:net'
import { parseHostPort } from '../host-port'
import type { ListenerConfig } from '../config'
import type { DrainableServer } from '../http1/connections'
import type { RequestHead } from '../http1/request-head'
import { NOT_READY, refusal } from '../http1/route'
import type { Refusal, RouteResult } from '../http1/route'
import type { SidecarServices } from '../services'
import { limitConnections } from '../steps/admit'
import { authorize } from '../steps/authorize'
import { OutboundRefused } from '../steps/tls-client'
import { OutboundHttp } from './outbound-http'
import type { OutboundDestination } from './outbound-tcp'

export function explicitProxyListener (services: SidecarServices, listener: ListenerConfig): Server & DrainableServer {
  const proxy: OutboundHttp<undefined> = new OutboundHttp<undefined>(services, listener, destinationOf, (head, done) => { void tunnel(services, listener, proxy, head, done) })
  const server = createServer({ noDelay: true }, socket => { proxy.connections.serve(socket, undefined) })
  return proxy.connections.drainable(limitConnections(services, listener, server))
}

/** The destination an absolute-form request names (port 80 for http, 443 for https when it names none). */
function destinationOf (head: RequestHead): OutboundDestination | Refusal {
  if (head.form !== 'absolute' || head.authority === undefined) return refusal(400, 'a proxy takes absolute-form requests (http://host:port/path) or CONNECT host:port')
  const authority = /:\d+$/.test(head.authority) ? head.authority : `${head.authority}:${/^https:/i.test(head.target) ? 443 : 80}`
  const target = parseHostPort(authority)
  if (typeof target === 'string') return refusal(400, `the request names no reachable destination: ${target}`)
  return { target, expect: undefined, servicePort: target.port }
}

/** CONNECT host:port: a verified mutual-TLS connection there, allowed as a TCP connection, becomes the tunnel. */
async function tunnel (services: SidecarServices, listener: ListenerConfig, proxy: OutboundHttp<undefined>, head: RequestHead, done: (result: RouteResult) => void): Promise<void> {
  const self = services.identity.current?.context.spiffeId
  if (self === undefined) return done(NOT_READY)
  const target = parseHostPort(head.target)
  if (typeof target === 'string') return done(refusal(400, `CONNECT needs host:port: ${target}`))
  let connection
  try {
    connection = await proxy.connector.connect(target, undefined)
  } catch (err) {
    if (!(err instanceof OutboundRefused)) services.logger.warn({ event: 'upstream_failed', listener: listener.name, err: (err as Error).message }, 'CONNECT failed')
    return done(refusal(502, 'the destination could not be reached or verified'))
  }
  const request = { from: self, to: connection.serverId, port: target.port }
  const decision = authorize(services, listener, request)
  if (!decision.allow) {
    connection.socket.destroy()
    return done(refusal(403, 'denied by policy', { rule: decision.rule, reason: decision.reason }))
  }
  const upstream = proxy.connections.pool.adopt(connection.socket, `${head.target}|tunnel`, connection.serverId, connection.expiresAt)
  done({ kind: 'tunnel', upstream, request })
}
