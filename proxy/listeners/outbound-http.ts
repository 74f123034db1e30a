/**
 * An outbound HTTP listener: the app sends plain HTTP on loopback; each request goes over a pooled mutual-TLS
 * connection to its destination, whose server was verified (chain, and `expect` when set) when the connection was
 * made, and is authorized (ourselves → that connection's verified server ID, with method and path) before a byte
 * of it is sent. The explicit HTTP proxy and transparent mode route their HTTP through the same class.
 */
import { createServer } from 'node:net'
import type { Server } from 'node:net'
import { XFCC_HEADER } from '../../spiffe/peer-header'
import type { SpiffeId } from '../../spiffe/id'
import type { ListenerConfig } from '../config'
import { HttpConnections } from '../http1/connections'
import type { DrainableServer } from '../http1/connections'
import { policyHttpOf } from '../http1/policy-http'
import type { RequestHead } from '../http1/request-head'
import { NOT_READY, refusal } from '../http1/route'
import type { Refusal, RouteResult } from '../http1/route'
import type { Upstream } from '../http1/upstream-pool'
import type { SidecarServices } from '../services'
import { limitConnections } from '../steps/admit'
import { authorize } from '../steps/authorize'
import { MtlsConnector, OutboundRefused } from '../steps/tls-client'
import { fixedDestination } from './outbound-tcp'
import type { OutboundDestination } from './outbound-tcp'

type Done = (result: RouteResult) => void

export function outboundHttpListener (services: SidecarServices, listener: ListenerConfig): Server & DrainableServer {
  const outbound = new OutboundHttp<OutboundDestination>(services, listener, (_head, destination) => destination)
  const destination = fixedDestination(listener)
  const server = createServer({ noDelay: true }, socket => { outbound.connections.serve(socket, destination) })
  return outbound.connections.drainable(limitConnections(services, listener, server))
}

/** The identity field is the receiving sidecar's to set; Proxy-Authorization was for this proxy, not the server. */
const dropOutbound = (lower: string): boolean => lower === 'proxy-authorization' || (lower.includes('_') ? lower.replace(/_/g, '-') : lower) === XFCC_HEADER

/** The outbound HTTP requests of plain sockets from the app, to the destination `destinationOf` names for each. */
export class OutboundHttp<C> {
  readonly connections: HttpConnections<C>
  readonly connector: MtlsConnector
  readonly #services: SidecarServices
  readonly #listener: ListenerConfig
  readonly #destinationOf: (head: RequestHead, context: C) => OutboundDestination | Refusal

  /** `connect`: how a CONNECT request is served (the explicit proxy's tunnels); other listeners refuse it. */
  constructor (services: SidecarServices, listener: ListenerConfig, destinationOf: (head: RequestHead, context: C) => OutboundDestination | Refusal, connect?: (head: RequestHead, done: Done) => void) {
    this.#services = services
    this.#listener = listener
    this.#destinationOf = destinationOf
    this.connector = new MtlsConnector(services, listener)
    this.connections = new HttpConnections<C>(services, listener, (head, context, done) => {
      if (head.form !== 'authority') this.#route(head, context, done)
      else if (connect !== undefined) connect(head, done)
      else done(refusal(400, 'CONNECT is served by an explicit HTTP proxy listener only'))
    }, () => undefined)
  }

  #route (head: RequestHead, context: C, done: Done): void {
    const self = this.#services.identity.current?.context.spiffeId
    if (self === undefined) return done(NOT_READY)
    const http = policyHttpOf(head)
    if ('problem' in http) return done(refusal(400, http.problem))
    const destination = this.#destinationOf(head, context)
    if ('kind' in destination) return done(destination)
    const key = `${destination.target.host}:${destination.target.port}|${destination.expect ?? ''}`
    const decide = (upstream: Upstream): RouteResult => {
      const request = { from: self, to: upstream.serverId ?? '', port: destination.servicePort, http }
      const decision = authorize(this.#services, this.#listener, request)
      if (!decision.allow) {
        this.connections.pool.release(upstream, true)
        return refusal(403, 'denied by policy', { rule: decision.rule, reason: decision.reason })
      }
      const defaultHost = `${destination.target.host}:${destination.target.port}`
      return { kind: 'forward', upstream, request, first: [], drop: dropOutbound, defaultHost, reconnect: next => { this.#reconnect(destination, key, upstream.serverId, next) } }
    }
    const idle = this.connections.pool.take(key)
    if (idle !== undefined) return done(decide(idle))
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
    this.connector.connect(destination.target, destination.expect).then(
      connection => { done(this.connections.pool.adopt(connection.socket, key, connection.serverId, connection.expiresAt)) },
      (err: Error) => {
        if (!(err instanceof OutboundRefused)) this.#services.logger.warn({ event: 'upstream_failed', listener: this.#listener.name, err: err.message }, 'outbound request failed')
        done(err)
      })
  }
}

function unreachable (err: Error): Refusal {
  return refusal(502, `the server could not be reached or verified: ${err.message}`)
}
