/**
 * Who is on each connection of the SPIRE server API socket. The socket admits connections as the Workload API's
 * does (agent/workload/connections.ts: SO_PEERCRED at accept, the uid's connection limits, the caller's process
 * pinned against PID reuse, a deadline for the first call); this gives the services and authorization.ts what they
 * need of it: a call's connection, found through the peer grpc-js reports for it, and its uid and pid for the log.
 */
import type { CallerConnection, ConnectionRegistry } from '../workload/connections'

/** What the log says of a call whose connection is not known (it closed meanwhile). */
export const UNKNOWN_CALLER = Object.freeze({ uid: -1, pid: -1 })

export class CallerRegistry {
  readonly #connections: ConnectionRegistry

  constructor (connections: ConnectionRegistry) {
    this.#connections = connections
  }

  /** The connection (kernel credentials, process pin) a call reports as its peer. */
  connection (peer: string): CallerConnection | undefined {
    return this.#connections.get(peer)
  }

  /** The caller's uid and pid, for the log. */
  of (peer: string): { uid: number, pid: number } {
    const credentials = this.#connections.get(peer)?.credentials
    return credentials === undefined ? UNKNOWN_CALLER : { uid: credentials.uid, pid: credentials.pid }
  }
}
