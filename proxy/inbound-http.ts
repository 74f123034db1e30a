/**
 * An inbound HTTP listener: mutual TLS, the peer verified once per connection, then every request authorized
 * (peer → ourselves, at the target's port, with its method and normalized path) and forwarded over pooled
 * keep-alive connections. The app learns the caller from X-Forwarded-Client-Cert, which only the sidecar sets:
 * whatever the client sent under that name is removed first. WebSocket upgrades are authorized the same way.
 */
import { createHash } from 'node:crypto'
import { Agent } from 'node:http'
import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http'
import type { Server as HttpsServer } from 'node:https'
import type { Duplex } from 'node:stream'
import type { TLSSocket } from 'node:tls'
import { createProxyServer } from 'http-proxy'
import type { SpiffeId } from '../spiffe/id'
import type { PolicyRequest } from '../policy/engine'
import { XFCC_HEADER, formatXfcc } from '../spiffe/peer-header'
import type { HostPort, ListenerConfig } from './config'
import { authorize } from './authorize'
import { answer, closeUpgradesTogether, httpRequestOf, httpUrl, observeDuration } from './http-common'
import type { IdentityState } from './identity'
import type { SidecarServices } from './services'
import { mtlsHttpsServer } from './tls-server'
import { verifyPeer } from './verify-peer'

interface Peer { readonly id: SpiffeId, readonly leafHash: string, readonly target: HostPort }

export function inboundHttpListener (services: SidecarServices, listener: ListenerConfig, state: IdentityState): HttpsServer {
  const server = mtlsHttpsServer(services, listener, state)
  const admit = serveInboundHttp(services, listener, server)
  server.on('secureConnection', (socket: TLSSocket) => { admit(socket, listener.target) })
  return server
}

/**
 * Serves the HTTP requests of `server` for verified peers; returns the admission of a TLS socket (verify the
 * peer, remember where its requests go): false, and the socket closed, when the peer is refused. Transparent mode
 * feeds the sockets of its HTTP ports to a server of its own through it.
 */
export function serveInboundHttp (services: SidecarServices, listener: ListenerConfig, server: HttpServer): (socket: TLSSocket, target: HostPort) => boolean {
  const peers = new WeakMap<object, Peer>()
  const proxy = createProxyServer({ agent: new Agent({ keepAlive: true, maxSockets: services.config.maxConnections }), xfwd: true })
  closeUpgradesTogether(proxy)
  proxy.on('error', (err, _req, res) => {
    services.logger.warn({ event: 'upstream_failed', listener: listener.name, err: err.message }, 'cannot reach the target')
    if ('writeHead' in res) answer(res, 502, { error: 'the app behind the sidecar is not reachable' })
    else res.destroy()
  })
  const admitSocket = (socket: TLSSocket, target: HostPort): boolean => {
    const id = verifyPeer(services, listener, socket)?.id
    if (id === undefined) {
      socket.destroy()
      return false
    }
    peers.set(socket, { id, leafHash: createHash('sha256').update(socket.getPeerCertificate().raw).digest('hex'), target })
    return true
  }

  /** Authorizes a request and sets the identity header; the allowed request, or undefined when it was answered (denied or malformed). */
  const admit = (req: IncomingMessage, refuse: (status: number, body: object) => void): { peer: Peer, request: PolicyRequest } | undefined => {
    const peer = peers.get(req.socket)
    const self = services.identity.current?.context.spiffeId
    if (peer === undefined || self === undefined) {
      refuse(503, { error: 'not ready' })
      return undefined
    }
    const http = httpRequestOf(req)
    if ('problem' in http) {
      refuse(400, { error: http.problem })
      return undefined
    }
    const request = { from: peer.id, to: self, port: peer.target.port, http }
    const decision = authorize(services, listener, request)
    if (!decision.allow) {
      refuse(403, { error: 'denied by policy', rule: decision.rule, reason: decision.reason })
      return undefined
    }
    // Whatever the client sent under this name (or its underscore spelling, which some servers fold into it) goes.
    for (const name of Object.keys(req.headers)) if (name.replace(/_/g, '-') === XFCC_HEADER) delete req.headers[name]
    req.headers[XFCC_HEADER] = formatXfcc({ by: self.toString(), hash: peer.leafHash, uri: peer.id.toString() })
    return { peer, request }
  }

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    observeDuration(services, listener, res)
    const admitted = admit(req, (status, body) => { answer(res, status, body) })
    if (admitted !== undefined) proxy.web(req, res, { target: httpUrl(admitted.peer.target) })
  })
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const admitted = admit(req, (status, body) => { refuseUpgrade(socket, status, body) })
    if (admitted === undefined) return
    services.tracker.add({ listener: listener.name, direction: 'inbound', request: admitted.request, sockets: [req.socket] })
    proxy.ws(req, socket, head, { target: httpUrl(admitted.peer.target) })
  })
  return admitSocket
}

function refuseUpgrade (socket: Duplex, status: number, body: object): void {
  const text = JSON.stringify(body)
  socket.end(`HTTP/1.1 ${status} ${status === 403 ? 'Forbidden' : 'Bad Request'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`)
}
