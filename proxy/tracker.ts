/**
 * Open connections, for what happens to them later: a policy change closes the ones the new policy denies, a
 * trust domain leaving the bundle set closes those with its peers (the rest are untouched in both cases), and
 * SIGTERM drains them. Each remembers the request it was allowed as.
 */
import type { Socket } from 'node:net'
import type { Decision, PolicyRequest } from '../policy/engine'
import type { SpiffeId } from '../spiffe/id'

export interface TrackedConnection {
  readonly listener: string
  readonly direction: 'inbound' | 'outbound'
  /** What the policy allowed: re-decided on every policy change. */
  readonly request: PolicyRequest
  /** Every socket of the connection (client side and upstream side). */
  readonly sockets: readonly Socket[]
}

/** The verified peer of a connection: the client inbound, the server outbound. */
export function peerOf (connection: TrackedConnection): SpiffeId | string {
  return connection.direction === 'inbound' ? connection.request.from : connection.request.to
}

export class ConnectionTracker {
  readonly #open = new Set<TrackedConnection>()
  #idle: (() => void) | undefined

  /** Starts tracking; the connection stops being tracked when its first socket closes. */
  add (connection: TrackedConnection): void {
    this.#open.add(connection)
    connection.sockets[0].once('close', () => {
      this.#open.delete(connection)
      if (this.#open.size === 0) this.#idle?.()
    })
  }

  get size (): number {
    return this.#open.size
  }

  /** Closes the open connections `close` picks (those closed already but not yet gone are skipped); returns them. */
  closeWhere (close: (connection: TrackedConnection) => boolean): TrackedConnection[] {
    const closed: TrackedConnection[] = []
    for (const connection of this.#open) {
      if (connection.sockets[0].destroyed || !close(connection)) continue
      closed.push(connection)
      for (const socket of connection.sockets) socket.destroy()
    }
    return closed
  }

  /** Closes the connections `decide` now denies; returns them with the denying decision. */
  reevaluate (decide: (request: PolicyRequest) => Decision): Array<{ connection: TrackedConnection, decision: Decision }> {
    const denied = new Map<TrackedConnection, Decision>()
    this.closeWhere(connection => {
      const decision = decide(connection.request)
      if (!decision.allow) denied.set(connection, decision)
      return !decision.allow
    })
    return [...denied].map(([connection, decision]) => ({ connection, decision }))
  }

  /** Waits until every connection has closed, or `ms` has passed; then closes what is left. Returns how many were cut. */
  async drain (ms: number): Promise<number> {
    if (this.#open.size > 0) {
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, ms)
        this.#idle = () => {
          clearTimeout(timer)
          resolve()
        }
      })
    }
    return this.closeWhere(() => true).length
  }
}
