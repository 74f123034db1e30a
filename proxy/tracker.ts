/**
 * Open connections, for what happens to them later: a policy change closes the ones the new policy denies
 * (the rest are untouched), and SIGTERM drains them. Each remembers the request it was allowed as.
 */
import type { Socket } from 'node:net'
import type { Decision, PolicyRequest } from '../policy/engine'

export interface TrackedConnection {
  readonly listener: string
  readonly direction: 'inbound' | 'outbound'
  /** What the policy allowed: re-decided on every policy change. */
  readonly request: PolicyRequest
  /** Every socket of the connection (client side and upstream side). */
  readonly sockets: readonly Socket[]
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

  /** Closes the connections `decide` now denies; returns them with the denying decision. */
  reevaluate (decide: (request: PolicyRequest) => Decision): Array<{ connection: TrackedConnection, decision: Decision }> {
    const closed: Array<{ connection: TrackedConnection, decision: Decision }> = []
    for (const connection of this.#open) {
      const decision = decide(connection.request)
      if (decision.allow) continue
      closed.push({ connection, decision })
      for (const socket of connection.sockets) socket.destroy()
    }
    return closed
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
    const cut = this.#open.size
    for (const connection of this.#open) for (const socket of connection.sockets) socket.destroy()
    return cut
  }
}
