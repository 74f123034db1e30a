/**
 * An inbound HTTP listener: mutual TLS, the peer verified once per connection, then every request authorized
 * (peer → ourselves, at the target's port, with its method and normalized path) and forwarded over pooled
 * keep-alive connections to the app. The app learns the caller from X-Forwarded-Client-Cert, which only the
 * sidecar sets: whatever the client sent under that name (or its underscore spelling) is removed first. WebSocket
 * upgrades are authorized the same way.
 */
import { createHash } from 'node:crypto'
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import type { Server, TLSSocket } from 'node:tls'
import { XFCC_HEADER, formatXfcc } from '../../spiffe/peer-header'
import type { SpiffeId } from '../../spiffe/id'
import type { HostPort, ListenerConfig } from '../config'
import { authorize } from '../steps/authorize'
import { policyHttpOf } from '../http1/policy-http'
import { HttpConnections } from '../http1/connections'
import type { DrainableServer } from '../http1/connections'
import type { Forward, Refusal } from '../http1/connection'
import { proxiedRequestHead } from '../http1/head'
import type { RequestHead } from '../http1/head'
import type { IdentityState } from '../identity'
import type { SidecarServices } from '../services'
import { mtlsServer } from '../steps/tls-server'
import type { UpstreamPool } from '../http1/upstream-pool'
import { verifyPeer } from '../steps/verify-peer'

interface Peer { readonly id: SpiffeId, readonly leafHash: string, readonly target: HostPort, readonly key: string, readonly remote: string, readonly port: string }

export function inboundHttpListener (services: SidecarServices, listener: ListenerConfig, state: IdentityState): Server & DrainableServer {
  const inbound = new InboundHttp(services, listener)
  const server = mtlsServer(services, listener, state, socket => { inbound.accept(socket, listener.target) })
  return inbound.connections.drainable(server)
}

/** Peer headers the sidecar sets, removed from what the client sent (underscore spellings too: some servers fold them). */
const SET_HERE = new Set([XFCC_HEADER, 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-port'])
const dropInbound = (lower: string): boolean => SET_HERE.has(lower.replace(/_/g, '-'))

/** The inbound HTTP requests of TLS sockets whose peer is verified here; transparent mode feeds its HTTP ports' sockets to it. */
export class InboundHttp {
  readonly connections: HttpConnections
  readonly #services: SidecarServices
  readonly #listener: ListenerConfig
  readonly #peers = new WeakMap<object, Peer>()

  constructor (services: SidecarServices, listener: ListenerConfig) {
    this.#services = services
    this.#listener = listener
    this.connections = new HttpConnections(services, listener, (head, client, done) => { done(this.#route(head, client)) })
  }

  /** Verifies the peer and serves its requests to `target`; a refused peer's socket is closed. */
  accept (socket: TLSSocket, target: HostPort): void {
    const peer = verifyPeer(this.#services, this.#listener, socket)
    if (peer === undefined) {
      socket.destroy()
      return
    }
    const leafHash = createHash('sha256').update(peer.chain[0]).digest('hex')
    this.#peers.set(socket, { id: peer.id, leafHash, target, key: `${target.host}:${target.port}`, remote: socket.remoteAddress ?? '', port: String(socket.localPort ?? '') })
    this.connections.serve(socket)
  }

  #route (head: RequestHead, client: Socket): Forward | Refusal {
    const peer = this.#peers.get(client) as Peer
    const self = this.#services.identity.current?.context.spiffeId
    if (self === undefined) return { status: 503, body: { error: 'not ready' } }
    const http = policyHttpOf(head.method, head.target)
    if ('problem' in http) return { status: 400, body: { error: http.problem } }
    const request = { from: peer.id, to: self, port: peer.target.port, http }
    const decision = authorize(this.#services, this.#listener, request)
    if (!decision.allow) return { status: 403, body: { error: 'denied by policy', rule: decision.rule, reason: decision.reason } }
    // Replaced, not appended to: what the peer's app wrote there is not something this sidecar verified.
    const text = proxiedRequestHead(head, dropInbound, [
      ['x-forwarded-for', peer.remote],
      ['x-forwarded-proto', 'https'],
      ['x-forwarded-port', peer.port],
      [XFCC_HEADER, formatXfcc({ by: self.toString(), hash: peer.leafHash, uri: peer.id.toString() })]
    ])
    const pool = this.connections.pool
    return { upstream: pool.take(peer.key) ?? appConnection(pool, peer), head: text, request, reconnect: done => { done(appConnection(pool, peer)) } }
  }
}

/** A new plain connection to the app; writes made before it connects wait in its buffer. */
function appConnection (pool: UpstreamPool, peer: Peer): ReturnType<UpstreamPool['adopt']> {
  return pool.adopt(connect(peer.target.port, peer.target.host), peer.key, undefined)
}
