/**
 * An outbound HTTP listener: the app sends plain HTTP on loopback; each request goes over a pooled mutual-TLS
 * connection to its destination, whose server was verified (chain, and `expect` when set) when the connection was
 * made, and is authorized (ourselves → that connection's verified server ID, with method and path) before a byte
 * of it is sent.
 */
import { createServer } from 'node:net'
import type { Server, Socket } from 'node:net'
import { XFCC_HEADER } from '../../spiffe/peer-header'
import type { SpiffeId } from '../../spiffe/id'
import type { HostPort, ListenerConfig } from '../config'
import { authorize } from '../steps/authorize'
import { policyHttpOf } from '../http1/policy-http'
import { HttpConnections } from '../http1/connections'
import type { DrainableServer } from '../http1/connections'
import type { Forward, HttpConnectionHooks, Refusal } from '../http1/connection'
import { proxiedRequestHead } from '../http1/head'
import { expectedPeer } from './outbound-tcp'
import type { SidecarServices } from '../services'
import { MtlsConnector, OutboundRefused } from '../steps/tls-client'
import type { Upstream } from '../http1/upstream-pool'

/** Where an outbound request goes, the server ID (or pattern) expected there, and the service (app) port the policy decides at. */
export interface OutboundDestination { readonly target: HostPort, readonly expect: string | undefined, readonly servicePort: number }

export function outboundHttpListener (services: SidecarServices, listener: ListenerConfig): Server & DrainableServer {
  const outbound = new OutboundHttp(services, listener, () => ({ target: listener.target, expect: listener.expect, servicePort: listener.servicePort }))
  const server = createServer({ noDelay: true }, socket => { outbound.connections.serve(socket) })
  server.maxConnections = services.config.maxConnections
  return outbound.connections.drainable(server)
}

const dropOutbound = (lower: string): boolean => lower.replace(/_/g, '-') === XFCC_HEADER

/** The outbound HTTP requests of plain sockets from the app; transparent mode feeds its HTTP ports' sockets to it. */
export class OutboundHttp {
  readonly connections: HttpConnections
  readonly #services: SidecarServices
  readonly #listener: ListenerConfig
  readonly #connector: MtlsConnector
  readonly #destinationOf: (client: Socket) => OutboundDestination

  constructor (services: SidecarServices, listener: ListenerConfig, destinationOf: (client: Socket) => OutboundDestination) {
    this.#services = services
    this.#listener = listener
    this.#destinationOf = destinationOf
    this.#connector = new MtlsConnector(services, listener)
    this.connections = new HttpConnections(services, listener, (head, client, done) => { this.#route(head, client, done) })
  }

  #route (...[head, client, done]: Parameters<HttpConnectionHooks['route']>): void {
    const self = this.#services.identity.current?.context.spiffeId
    if (self === undefined) {
      done({ status: 503, body: { error: 'not ready' } })
      return
    }
    const http = policyHttpOf(head.method, head.target)
    if ('problem' in http) {
      done({ status: 400, body: { error: http.problem } })
      return
    }
    const destination = this.#destinationOf(client)
    const key = `${destination.target.host}:${destination.target.port}|${destination.expect ?? ''}`
    const decide = (upstream: Upstream): Forward | Refusal => {
      const request = { from: self, to: upstream.serverId ?? '', port: destination.servicePort, http }
      const decision = authorize(this.#services, this.#listener, request)
      if (decision.allow) return { upstream, head: proxiedRequestHead(head, dropOutbound, []), request, reconnect: next => { this.#reconnect(destination, key, upstream.serverId, next) } }
      this.connections.pool.release(upstream, true)
      return { status: 403, body: { error: 'denied by policy', rule: decision.rule, reason: decision.reason } }
    }
    const idle = this.connections.pool.take(key)
    if (idle !== undefined) {
      done(decide(idle))
      return
    }
    this.#connect(destination, key, upstream => { done(upstream instanceof Error ? unreachable(upstream) : decide(upstream)) })
  }

  /**
   * A new connection for a request that its reused one closed on unanswered. The request was authorized for the
   * server of that connection, so it goes on the new one only if the server there has the same ID.
   */
  #reconnect (destination: OutboundDestination, key: string, authorizedFor: SpiffeId | undefined, done: (upstream: Upstream | Error) => void): void {
    this.#connect(destination, key, fresh => {
      if (fresh instanceof Error || (authorizedFor !== undefined && fresh.serverId?.equals(authorizedFor) === true)) {
        done(fresh)
        return
      }
      this.connections.pool.release(fresh, true)
      const target = `${destination.target.host}:${destination.target.port}`
      this.#services.logger.warn({ event: 'upstream_changed', listener: this.#listener.name, target, was: authorizedFor?.toString(), now: fresh.serverId?.toString() }, 'the server changed between connections: the request was not sent again')
      done(new Error(`the server at ${target} is now ${fresh.serverId?.toString() ?? 'unknown'}, not ${authorizedFor?.toString() ?? 'the one'} the request was authorized for`))
    })
  }

  /** A new verified mutual-TLS connection to the destination, or the error. */
  #connect (destination: OutboundDestination, key: string, done: (upstream: Upstream | Error) => void): void {
    this.#connector.connect(expectedPeer(destination.expect), destination.expect, destination.target).then(
      connection => { done(this.connections.pool.adopt(connection.socket, key, connection.serverId)) },
      (err: Error) => {
        if (!(err instanceof OutboundRefused)) this.#services.logger.warn({ event: 'upstream_failed', listener: this.#listener.name, err: err.message }, 'outbound request failed')
        done(err)
      })
  }
}

function unreachable (err: Error): Refusal {
  return { status: 502, body: { error: `the server could not be reached or verified: ${err.message}` } }
}

