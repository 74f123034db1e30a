/**
 * The HTTP-mode connections of one listener: each client connection served by an HttpConnection with the
 * listener's routing and a context of its own (the verified peer inbound, the destination outbound), one pool of
 * upstream connections, request durations in the metrics, upgraded connections tracked like TCP ones (a policy
 * reload re-decides them). Draining closes idle connections at once and the others after their current response.
 * When a trust domain leaves the bundle set, the connections with its peers close: client connections inbound,
 * upstream connections (idle or in use) outbound.
 */
import type { Server, Socket } from 'node:net'
import type { SpiffeId } from '../../spiffe/id'
import type { ListenerConfig } from '../config'
import type { SidecarServices } from '../services'
import { refused } from '../steps/admit'
import { HttpConnection } from './connection'
import type { HttpConnectionHooks } from './route'
import { UpstreamPool } from './upstream-pool'

/** A listener's server whose open HTTP connections the sidecar closes itself: when it stops, or when peers are no longer trusted. */
export interface Drainable {
  closeIdleConnections: () => void
  closeAllConnections: () => void
  /** Closes the connections whose verified peer `gone` picks; returns how many. */
  closePeerConnections: (gone: (peer: SpiffeId) => boolean) => number
}

export type DrainableServer = Server & Drainable

export function isDrainable (server: Server): server is DrainableServer {
  return 'closeIdleConnections' in server && 'closeAllConnections' in server && 'closePeerConnections' in server
}

export class HttpConnections<C> {
  readonly pool: UpstreamPool
  readonly #open = new Set<HttpConnection<C>>()
  /** Client connections accepted here and served by another app's side (node mode, same device). */
  readonly #lent = new Set<Socket>()
  readonly #hooks: HttpConnectionHooks<C>
  readonly #peerOf: (context: C) => SpiffeId | undefined
  #draining = false

  /** `peerOf`: the verified peer a connection's context names (inbound), if any. */
  constructor (services: SidecarServices, listener: ListenerConfig, route: HttpConnectionHooks<C>['route'], peerOf: (context: C) => SpiffeId | undefined) {
    const { config, metrics, logger, tracker } = services
    this.#peerOf = peerOf
    const pool = this.pool = new UpstreamPool(config.idleTimeoutMs, (err, target) => {
      logger.warn({ event: 'upstream_failed', listener: listener.name, target, err: err.message }, 'the upstream connection failed')
    })
    this.#hooks = {
      settings: { idleTimeoutMs: config.idleTimeoutMs, headTimeoutMs: config.headTimeoutMs, limits: config.httpLimits, upgrades: listener.upgrades },
      route,
      release: (upstream, reusable, keepAliveMs) => { pool.release(upstream, reusable && !this.#draining, keepAliveMs) },
      observe: (status, ms) => { metrics.httpDuration.observe(listener.name, status, ms / 1000) },
      tunnel: (request, client, upstream) => { tracker.add({ listener: listener.name, direction: listener.direction, request, sockets: [client, upstream] }) },
      limited: (limit, context, remote) => { refused(services, listener, limit, peerOf(context)?.toString(), remote) }
    }
  }

  /** Serves the HTTP requests arriving on `socket` (plain, or TLS already verified by the listener). */
  serve (socket: Socket, context: C): void {
    const connection = new HttpConnection(socket, this.#hooks, context)
    connection.draining = this.#draining
    this.#open.add(connection)
    socket.once('close', () => { this.#open.delete(connection) })
  }

  /** A client connection accepted here that another app's side serves (node mode, same device): closed with the rest. */
  lend (socket: Socket): void {
    this.#lent.add(socket)
    socket.once('close', () => { this.#lent.delete(socket) })
  }

  /** Makes `server` drainable through these connections. */
  drainable<T extends Server> (server: T): T & Drainable {
    return Object.assign(server, {
      closeIdleConnections: () => {
        this.#draining = true
        this.pool.closeIdle()
        for (const connection of this.#open) {
          connection.draining = true
          if (connection.idle) connection.destroy()
        }
      },
      closeAllConnections: () => {
        for (const connection of this.#open) connection.destroy()
        for (const socket of this.#lent) socket.destroy()
      },
      closePeerConnections: (gone: (peer: SpiffeId) => boolean) => this.#closePeerConnections(gone)
    })
  }

  #closePeerConnections (gone: (peer: SpiffeId) => boolean): number {
    let closed = this.pool.closeWhere(gone)
    for (const connection of this.#open) {
      const peer = this.#peerOf(connection.context)
      if (connection.client.destroyed || peer === undefined || !gone(peer)) continue
      connection.destroy()
      closed++
    }
    return closed
  }
}
