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
import type { ListenerConfig } from './config'
import { authorize } from './authorize'
import { answer, closeUpgradesTogether, httpRequestOf, observeDuration } from './http-common'
import { expectedPeer } from './outbound-tcp'
import type { SidecarServices } from './services'
import { MtlsConnector, OutboundRefused } from './tls-client'

/** An http.Agent whose connections are verified mutual TLS to the listener's target, pinned to one server ID. */
class VerifiedAgent extends Agent {
  pinned: SpiffeId | string | undefined
  readonly #connector: MtlsConnector
  readonly #expect: string | undefined

  constructor (connector: MtlsConnector, listener: ListenerConfig, maxSockets: number) {
    super({ keepAlive: true, maxSockets })
    this.#connector = connector
    this.#expect = listener.expect
  }

  /** The server's ID for decisions: learned (and pinned) by connecting once when `expect` does not name it. */
  async serverId (): Promise<SpiffeId | string> {
    if (this.pinned !== undefined) return this.pinned
    const { socket, serverId } = await this.#connector.connect(expectedPeer(this.#expect), this.#expect)
    socket.destroy()
    this.pinned ??= serverId
    return this.pinned
  }

  // Node's Agent accepts a connection handed over later through the callback.
  override createConnection (_options: ClientRequestArgs, done?: (err: Error | null, socket: Duplex) => void): undefined {
    const pinned = this.pinned
    const expected = pinned === undefined ? expectedPeer(this.#expect) : (id: SpiffeId) => id.equals(pinned)
    this.#connector.connect(expected, pinned?.toString() ?? this.#expect).then(
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
  const agent = new VerifiedAgent(new MtlsConnector(services, listener), listener, services.config.maxConnections)
  agent.pinned = exactId(listener.expect)
  const target = `http://${listener.target.host.includes(':') ? `[${listener.target.host}]` : listener.target.host}:${listener.target.port}`
  const proxy = createProxyServer({ target, agent })
  closeUpgradesTogether(proxy)
  proxy.on('error', (err, _req, res) => {
    if (!(err instanceof OutboundRefused)) services.logger.warn({ event: 'upstream_failed', listener: listener.name, target, err: err.message }, 'outbound request failed')
    if ('writeHead' in res) answer(res, 502, { error: `the server could not be reached or verified: ${err.message}` })
    else res.destroy()
  })
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    observeDuration(services, listener, res)
    void forward(services, listener, agent, req, res, (r, s) => { proxy.web(r, s) })
  })
  // WebSocket upgrades: decided like requests, then handed to the verified connection.
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => { socket.destroy() })
    const res = new ServerResponse(req)
    res.assignSocket(socket as Socket)
    void forward(services, listener, agent, req, res, (r, _res, request) => {
      res.detachSocket(socket as Socket)
      services.tracker.add({ listener: listener.name, direction: 'outbound', request, sockets: [socket as Socket] })
      proxy.ws(r, socket, head)
    })
  })
  server.maxConnections = services.config.maxConnections
  server.setTimeout(services.config.idleTimeoutMs)
  return server
}

async function forward (services: SidecarServices, listener: ListenerConfig, agent: VerifiedAgent, req: IncomingMessage, res: ServerResponse, send: (req: IncomingMessage, res: ServerResponse, request: PolicyRequest) => void): Promise<void> {
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
  const request = { from: self, to: serverId, port: listener.target.port, http }
  const decision = authorize(services, listener, request)
  if (!decision.allow) {
    answer(res, 403, { error: 'denied by policy', rule: decision.rule, reason: decision.reason })
    return
  }
  delete req.headers[XFCC_HEADER]
  send(req, res, request)
}
