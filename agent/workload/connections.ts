/**
 * Who is on each Workload API connection, from the kernel: SO_PEERCRED at accept, and the caller's process start
 * time pinned then (so a PID reused later is caught). gRPC calls find their connection through a token the agent
 * writes as the socket's remoteAddress (Unix sockets have none), which grpc-js reports as the call's peer; the
 * caller cannot influence it.
 */
import type { Socket } from 'node:net'
import type { Logger } from 'pino'
import { peerCredentials, pinProcess } from '../attestation'
import type { PeerCredentials, ProcessPin } from '../attestation'

export interface CallerConnection {
  readonly credentials: PeerCredentials
  readonly pin: ProcessPin
}

export class ConnectionRegistry {
  readonly #connections = new Map<string, CallerConnection>()
  readonly #logger: Logger
  #next = 0

  constructor (logger: Logger) {
    this.#logger = logger
  }

  /** Reads the caller's credentials and pins its process; returns false (socket destroyed) when that is impossible. */
  accept (socket: Socket): boolean {
    let connection: CallerConnection
    try {
      const credentials = peerCredentials(socket)
      connection = { credentials, pin: pinProcess(credentials.pid) }
    } catch (err) {
      this.#logger.warn({ err }, 'workload API: refused a connection whose caller cannot be identified')
      socket.destroy()
      return false
    }
    const token = `workload-connection-${++this.#next}`
    Object.defineProperty(socket, 'remoteAddress', { value: token, configurable: false, enumerable: true })
    this.#connections.set(token, connection)
    socket.once('close', () => this.#connections.delete(token))
    return true
  }

  /** The connection of a call, by the peer grpc-js reports for it. */
  get (peer: string): CallerConnection | undefined {
    return this.#connections.get(peer)
  }

  get size (): number {
    return this.#connections.size
  }
}
