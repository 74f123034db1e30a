/**
 * An outbound HTTP listener: the app sends plain HTTP on loopback; each request is authorized (ourselves → the
 * server, with its method and path) and sent over pooled, verified mutual-TLS connections. The server's ID the
 * decision names is the one the connection must present: `expect` when it is an exact ID, else the ID learned
 * from the first verified connection to the target, pinned until a connection shows another.
 */
import { Agent, ServerResponse, createServer } from 'node:http'
import type { Socket } from 'node:net'
import type { ClientRequestArgs, IncomingMessage, Server } from 'node:http'
import { PassThrough } from 'node:stream'
import type { Duplex } from 'node:stream'
import { createProxyServer } from 'http-proxy'
import { parseIdPattern } from '../policy/id-pattern'
import type { SpiffeId } from '../spiffe/id'
import type { PolicyRequest } from '../policy/engine'
import { XFCC_HEADER } from '../spiffe/peer-header'
import type { HostPort, ListenerConfig } from './config'
import { authorize } from './authorize'
import { answer, closeUpgradesTogether, httpRequestOf, httpUrl, observeDuration } from './http-common'
import { expectedPeer } from './outbound-tcp'
import type { SidecarServices } from './services'
import { MtlsConnector, OutboundRefused } from './tls-client'

/** Where an outbound request goes, and the server ID (or pattern) expected there. */
export interface OutboundDestination { readonly target: HostPort, readonly expect: string | undefined }

/** An http.Agent whose connections are verified mutual TLS to one destination, pinned to one server ID. */
class VerifiedAgent extends Agent {
  pinned: SpiffeId | string | undefined
  readonly #connector: MtlsConnector
  readonly #target: HostPort
  readonly #expect: string | undefined

  constructor (connector: MtlsConnector, destination: OutboundDestination, maxSockets: number) {
    super({ keepAlive: true, maxSockets })
    this.#connector = connector
    this.#target = destination.target
    this.#expect = destination.expect
    this.pinned = exactId(destination.expect)
  }

  /** The server's ID for decisions: learned (and pinned) by connecting once when `expect` does not name it. */
  async serverId (): Promise<SpiffeId | string> {
    if (this.pinned !== undefined) return this.pinned
    const { socket, serverId } = await this.#connector.connect(expectedPeer(this.#expect), this.#expect, this.#target)
    socket.destroy()
    this.pinned ??= serverId
    return this.pinned
  }

  // Node's Agent accepts a connection handed over later through the callback.
  override createConnection (_options: ClientRequestArgs, done?: (err: Error | null, socket: Duplex) => void): undefined {
    const pinned = this.pinned
    const expected = pinned === undefined ? expectedPeer(this.#expect) : (id: SpiffeId) => id.equals(pinned)
    this.#connector.connect(expected, pinned?.toString() ?? this.#expect, this.#target).then(
      ({ socket }) => { done?.(null, socket) },
      (err: Error) => {
        this.pinned = exactId(this.#expect) // a server that changed identity is learned again next time
        done?.(err, new PassThrough())
      })
    return undefined
  }
}

/** `expect` when it names exactly one ID (no wildcards). */
function exactId (expect: string | undefined): string | undefined {
  const pattern = expect === undefined ? undefined : parseIdPattern(expect)
  return typeof pattern === 'object' && pattern.kind === 'path' && !pattern.deep && !pattern.segments.includes('*') ? expect : undefined
}

export function outboundHttpListener (services: SidecarServices, listener: ListenerConfig): Server {
  const server = createServer()
  serveOutboundHttp(services, listener, server, () => ({ target: listener.target, expect: listener.expect }))
  server.maxConnections = services.config.maxConnections
  server.setTimeout(services.config.idleTimeoutMs)
  return server
}

const AGENTS_LIMIT = 1024

/**
 * Serves the plain HTTP requests of `server` (from the app) over verified mutual TLS to each request's
 * destination, with a pool per destination. Transparent mode feeds the connections of its HTTP ports to a server
 * of its own, with their original destinations.
 */
export function serveOutboundHttp (services: SidecarServices, listener: ListenerConfig, server: Server, destinationOf: (req: IncomingMessage) => OutboundDestination): void {
  const connector = new MtlsConnector(services, listener)
  const agents = new Map<string, VerifiedAgent>()
  const agentFor = (destination: OutboundDestination): VerifiedAgent => {
    const key = `${destination.target.host}:${destination.target.port}|${destination.expect ?? ''}`
    let agent = agents.get(key)
    if (agent === undefined) {
      if (agents.size >= AGENTS_LIMIT) agents.clear()
      agents.set(key, agent = new VerifiedAgent(connector, destination, services.config.maxConnections))
    }
    return agent
  }
  const proxy = createProxyServer({})
  closeUpgradesTogether(proxy)
  proxy.on('error', (err, _req, res) => {
    if (!(err instanceof OutboundRefused)) services.logger.warn({ event: 'upstream_failed', listener: listener.name, err: err.message }, 'outbound request failed')
    if ('writeHead' in res) answer(res, 502, { error: `the server could not be reached or verified: ${err.message}` })
    else res.destroy()
  })
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    observeDuration(services, listener, res)
    const destination = destinationOf(req)
    const agent = agentFor(destination)
    void forward(services, listener, agent, destination, req, res, (r, s) => { proxy.web(r, s, { target: httpUrl(destination.target), agent }) })
  })
  // WebSocket upgrades: decided like requests, then handed to the verified connection.
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => { socket.destroy() })
    const res = new ServerResponse(req)
    res.assignSocket(socket as Socket)
    const destination = destinationOf(req)
    const agent = agentFor(destination)
    void forward(services, listener, agent, destination, req, res, (r, _res, request) => {
      res.detachSocket(socket as Socket)
      services.tracker.add({ listener: listener.name, direction: 'outbound', request, sockets: [socket as Socket] })
      proxy.ws(r, socket, head, { target: httpUrl(destination.target), agent })
    })
  })
}

async function forward (services: SidecarServices, listener: ListenerConfig, agent: VerifiedAgent, destination: OutboundDestination, req: IncomingMessage, res: ServerResponse, send: (req: IncomingMessage, res: ServerResponse, request: PolicyRequest) => void): Promise<void> {
  const self = services.identity.current?.context.spiffeId
  const http = httpRequestOf(req)
  if (self === undefined || 'problem' in http) {
    answer(res, self === undefined ? 503 : 400, { error: self === undefined ? 'not ready' : (http as { problem: string }).problem })
    return
  }
  let serverId
  try {
    serverId = await agent.serverId()
  } catch (err) {
    answer(res, 502, { error: `the server could not be reached or verified: ${(err as Error).message}` })
    return
  }
  const request = { from: self, to: serverId, port: destination.target.port, http }
  const decision = authorize(services, listener, request)
  if (!decision.allow) {
    answer(res, 403, { error: 'denied by policy', rule: decision.rule, reason: decision.reason })
    return
  }
  delete req.headers[XFCC_HEADER]
  send(req, res, request)
}
