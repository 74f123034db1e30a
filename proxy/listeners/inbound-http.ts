/**
 * An inbound HTTP listener: mutual TLS, the peer verified and admitted once per connection, then every request
 * authorized (peer → ourselves, at the app's port, with its method and normalized path) and forwarded over pooled
 * keep-alive connections to the app. The app learns the caller from X-Forwarded-Client-Cert, which only the
 * sidecar sets, first among the fields: whatever the client sent under the identity names (any case, underscore
 * spellings, `Forwarded`) is removed, from the head and from the trailers. WebSocket upgrades are authorized the
 * same way.
 */
import { createHash } from 'node:crypto'
import type { Socket } from 'node:net'
import type { Server, TLSSocket } from 'node:tls'
import { XFCC_HEADER, formatXfcc } from '../../spiffe/peer-header'
import type { SpiffeId } from '../../spiffe/id'
import type { ListenerConfig } from '../config'
import type { Dialer } from '../dial'
import type { HostPort } from '../host-port'
import { HttpConnections } from '../http1/connections'
import type { DrainableServer } from '../http1/connections'
import { policyHttpOf } from '../http1/policy-http'
import type { RequestHead } from '../http1/request-head'
import { NOT_READY, refusal } from '../http1/route'
import type { RouteResult } from '../http1/route'
import type { Field } from '../http1/serialize'
import type { UpstreamPool } from '../http1/upstream-pool'
import type { IdentityState } from '../identity'
import type { SidecarServices } from '../services'
import { PeerAdmission } from '../steps/admit'
import { authorize } from '../steps/authorize'
import type { VerifiedPeer } from '../steps/verify-peer'
import { mtlsServer } from '../steps/tls-server'

/** One inbound connection's verified peer and where its requests go. */
interface InboundPeer {
  readonly id: SpiffeId
  readonly leafHash: string
  readonly target: HostPort
  readonly key: string
  readonly remote: string
  /** The port the peer called (X-Forwarded-Port): the listener's, or for a redirected or tunnelled connection the app's. */
  readonly calledPort: string
  /** The identity fields for this peer, built once per connection and own ID (they change only with a rotation). */
  identity: { readonly self: SpiffeId, readonly fields: readonly Field[] } | undefined
}

export function inboundHttpListener (services: SidecarServices, listener: ListenerConfig, state: IdentityState): Server & DrainableServer {
  const inbound = new InboundHttp(services, listener)
  const server = mtlsServer(services, listener, state, socket => { inbound.accept(socket, listener.target) })
  return inbound.connections.drainable(server)
}

/** Identity fields the sidecar sets, removed from what the client sent (underscore spellings too: some servers fold them). */
const SET_HERE = new Set([XFCC_HEADER, 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-port', 'forwarded'])
const dropInbound = (lower: string): boolean => SET_HERE.has(lower.includes('_') ? lower.replace(/_/g, '-') : lower)

/** The inbound HTTP requests of TLS sockets whose peer is verified here (or node mode's same-device callers); transparent mode feeds its HTTP ports' sockets to it. */
export class InboundHttp {
  readonly connections: HttpConnections<InboundPeer>
  readonly #services: SidecarServices
  readonly #listener: ListenerConfig
  readonly #admission: PeerAdmission

  /** `admission`: shared with the listener's TCP connections (transparent mode), so a peer's limit counts both. */
  constructor (services: SidecarServices, listener: ListenerConfig, admission = new PeerAdmission(services, listener)) {
    this.#services = services
    this.#listener = listener
    this.#admission = admission
    this.connections = new HttpConnections<InboundPeer>(services, listener, (head, peer, done) => { done(this.#route(head, peer)) }, peer => peer.id)
  }

  /** Verifies and admits the peer, then serves its requests to `target`; a refused peer's socket is closed. */
  accept (socket: TLSSocket, target: HostPort, calledPort = socket.localPort ?? 0): void {
    const admitted = this.#admission.accept(socket, target.port, true)
    if (admitted !== undefined) this.serveAdmitted(socket, target, admitted.peer, calledPort)
  }

  /** Serves the requests of a peer already admitted (and screened for `target`'s port), who called `calledPort`. */
  serveAdmitted (socket: Socket, target: HostPort, peer: VerifiedPeer, calledPort: number): void {
    const leafHash = createHash('sha256').update(peer.chain[0]).digest('hex')
    this.connections.serve(socket, { id: peer.id, leafHash, target, key: `${target.host}:${target.port}`, remote: socket.remoteAddress ?? '', calledPort: String(calledPort), identity: undefined })
  }

  #route (head: RequestHead, peer: InboundPeer): RouteResult {
    const self = this.#services.identity.current?.context.spiffeId
    if (self === undefined) return NOT_READY
    if (head.form === 'authority') return refusal(400, 'CONNECT is served by an explicit HTTP proxy listener only')
    const http = policyHttpOf(head)
    if ('problem' in http) return refusal(400, http.problem)
    const request = { from: peer.id, to: self, port: peer.target.port, http }
    const decision = authorize(this.#services, this.#listener, request)
    if (!decision.allow) return refusal(403, 'denied by policy', { rule: decision.rule, reason: decision.reason })
    const pool = this.connections.pool
    return {
      kind: 'forward',
      upstream: pool.take(peer.key) ?? appConnection(pool, this.#services.dial, peer),
      request,
      first: identityFields(peer, self),
      drop: dropInbound,
      defaultHost: peer.key,
      reconnect: done => { done(appConnection(pool, this.#services.dial, peer)) }
    }
  }
}

/** The fields that tell the app who calls: set, not appended to (what the peer's app wrote there, this sidecar did not verify). */
function identityFields (peer: InboundPeer, self: SpiffeId): readonly Field[] {
  if (peer.identity?.self !== self) {
    peer.identity = {
      self,
      fields: [
        [XFCC_HEADER, formatXfcc({ by: self.toString(), hash: peer.leafHash, uri: peer.id.toString() })],
        ['x-forwarded-for', peer.remote],
        ['x-forwarded-proto', 'https'],
        ['x-forwarded-port', peer.calledPort]
      ]
    }
  }
  return peer.identity.fields
}

/** A new plain connection to the app; writes made before it connects wait in its buffer. */
function appConnection (pool: UpstreamPool, dial: Dialer, peer: InboundPeer): ReturnType<UpstreamPool['adopt']> {
  return pool.adopt(dial(peer.target, 'app'), peer.key, undefined)
}
