/**
 * An explicit HTTP proxy listener, for apps that honour HTTP_PROXY / HTTPS_PROXY: `CONNECT host:port` opens a
 * tunnel, and an absolute-form request (`GET http://host:port/path`) is forwarded. Either way the destination is
 * reached over mutual TLS (where its sidecar listens), its SPIFFE ID verified, and the policy decides
 * (ourselves → that ID; with method and path for forwarded requests) at the port the app named, which should
 * therefore be the service's own port (e.g. a transparent inbound listener on the server's side). Connections
 * are not pooled here: each request is decided on the connection it will use.
 */
import { createServer, request } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { XFCC_HEADER } from '../../spiffe/peer-header'
import { parseHostPort } from '../config'
import type { HostPort, ListenerConfig } from '../config'
import { authorize } from '../steps/authorize'
import { answer, observeDuration, policyHttpOf } from '../http1/policy-http'
import { pipeSockets } from '../steps/pipe'
import type { SidecarServices } from '../services'
import { MtlsConnector, OutboundRefused } from '../steps/tls-client'
import type { VerifiedConnection } from '../steps/tls-client'

const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', XFCC_HEADER]

export function explicitProxyListener (services: SidecarServices, listener: ListenerConfig): Server {
  const connector = new MtlsConnector(services, listener)
  const server = createServer((req, res) => {
    observeDuration(services, listener, res)
    void forwardRequest(services, listener, connector, req, res)
  })
  server.on('connect', (req: IncomingMessage, client: Duplex, head: Buffer) => { void tunnel(services, listener, connector, req, client as Socket, head) })
  server.maxConnections = services.config.maxConnections
  server.setTimeout(services.config.idleTimeoutMs)
  return server
}

/** Connects to the destination and verifies it; undefined when refused (already logged). */
async function reach (connector: MtlsConnector, target: HostPort): Promise<VerifiedConnection | undefined> {
  try {
    return await connector.connect(undefined, '', target)
  } catch (err) {
    if (err instanceof OutboundRefused) return undefined
    throw err
  }
}

async function tunnel (services: SidecarServices, listener: ListenerConfig, connector: MtlsConnector, req: IncomingMessage, client: Socket, head: Buffer): Promise<void> {
  client.on('error', () => { client.destroy() })
  const refuse = (status: string, body: object): void => {
    const text = JSON.stringify(body)
    client.end(`HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\n\r\n${text}`)
  }
  const target = parseHostPort(req.url ?? '')
  const self = services.identity.current?.context.spiffeId
  if (typeof target === 'string' || self === undefined) {
    refuse('400 Bad Request', { error: typeof target === 'string' ? `CONNECT needs host:port: ${target}` : 'not ready' })
    return
  }
  const connection = await reach(connector, target)
  if (connection === undefined) {
    refuse('502 Bad Gateway', { error: 'the destination could not be reached or verified' })
    return
  }
  const request = { from: self, to: connection.serverId, port: target.port }
  const decision = authorize(services, listener, request)
  if (!decision.allow) {
    connection.socket.destroy()
    refuse('403 Forbidden', { error: 'denied by policy', rule: decision.rule, reason: decision.reason })
    return
  }
  client.write('HTTP/1.1 200 Connection Established\r\n\r\n')
  if (head.length > 0) connection.socket.write(head)
  services.tracker.add({ listener: listener.name, direction: 'outbound', request, sockets: [client, connection.socket] })
  pipeSockets(services, listener, client, connection.socket)
}

async function forwardRequest (services: SidecarServices, listener: ListenerConfig, connector: MtlsConnector, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = /^http:\/\/([^/?#]+)/i.exec(req.url ?? '')
  const target = url === null ? 'a proxy takes absolute-form requests (http://host:port/path) or CONNECT' : parseHostPort(url[1].includes(':') ? url[1] : `${url[1]}:80`)
  const http = policyHttpOf(req.method ?? 'GET', req.url ?? '')
  const self = services.identity.current?.context.spiffeId
  if (typeof target === 'string' || 'problem' in http || self === undefined) {
    answer(res, 400, { error: typeof target === 'string' ? target : 'problem' in http ? http.problem : 'not ready' })
    return
  }
  const connection = await reach(connector, target)
  if (connection === undefined) {
    answer(res, 502, { error: 'the destination could not be reached or verified' })
    return
  }
  const decision = authorize(services, listener, { from: self, to: connection.serverId, port: target.port, http })
  if (!decision.allow) {
    connection.socket.destroy()
    answer(res, 403, { error: 'denied by policy', rule: decision.rule, reason: decision.reason })
    return
  }
  const headers = { ...req.headers }
  for (const name of HOP_BY_HOP) delete headers[name]
  const upstream = request({ method: req.method, path: (req.url ?? '/').slice(url?.[0].length ?? 0) || '/', headers: { ...headers, connection: 'close' }, createConnection: () => connection.socket })
  upstream.on('response', upstreamRes => {
    res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers)
    upstreamRes.pipe(res)
  })
  upstream.on('error', err => { answer(res, 502, { error: err.message }) })
  req.pipe(upstream)
}
