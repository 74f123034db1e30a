/**
 * The HTTP-mode connections of one listener: each client connection served by an HttpConnection with the
 * listener's routing, one pool of upstream connections, request durations in the metrics, upgraded connections
 * tracked like TCP ones (a policy reload re-decides them). Draining closes idle connections at once and the
 * others after their current response.
 */
import type { Server, Socket } from 'node:net'
import type { ListenerConfig } from '../config'
import { HttpConnection } from './connection'
import type { HttpConnectionHooks } from './connection'
import type { SidecarServices } from '../services'
import { UpstreamPool } from './upstream-pool'

/** A listener's server whose open HTTP connections the sidecar closes itself when it stops. */
export interface Drainable {
  closeIdleConnections: () => void
  closeAllConnections: () => void
}

export type DrainableServer = Server & Drainable

export function isDrainable (server: Server): server is DrainableServer {
  return 'closeIdleConnections' in server && 'closeAllConnections' in server
}

export class HttpConnections {
  readonly pool: UpstreamPool
  readonly #open = new Set<HttpConnection>()
  readonly #hooks: HttpConnectionHooks
  #draining = false

  constructor (services: SidecarServices, listener: ListenerConfig, route: HttpConnectionHooks['route']) {
    const pool = this.pool = new UpstreamPool(services.config.idleTimeoutMs, (err, target) => {
      services.logger.warn({ event: 'upstream_failed', listener: listener.name, target, err: err.message }, 'the upstream connection failed')
    })
    this.#hooks = {
      route,
      release: (upstream, reusable, keepAliveMs) => { pool.release(upstream, reusable && !this.#draining, keepAliveMs) },
      observe: (status, ms) => { services.metrics.httpDuration.observe({ listener: listener.name, code: String(status) }, ms / 1000) },
      tunnel: (request, client, upstream) => {
        services.tracker.add({ listener: listener.name, direction: listener.direction, request, sockets: [client, upstream] })
      },
      idleTimeoutMs: services.config.idleTimeoutMs
    }
  }

  /** Serves the HTTP requests arriving on `socket` (plain, or TLS already verified by the listener). */
  serve (socket: Socket): void {
    const connection = new HttpConnection(socket, this.#hooks)
    connection.draining = this.#draining
    this.#open.add(connection)
    socket.once('close', () => { this.#open.delete(connection) })
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
      closeAllConnections: () => { for (const connection of this.#open) connection.destroy() }
    })
  }
}
