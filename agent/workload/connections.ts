/**
 * Who is on each Workload API connection, from the kernel: SO_PEERCRED at accept, and the caller's process start
 * time pinned then (so a PID reused later is caught). gRPC calls find their connection through a token the agent
 * writes as the socket's remoteAddress (Unix sockets have none), which grpc-js reports as the call's peer; the
 * caller cannot influence it.
 */
import type { Socket } from 'node:net'
import { peerCredentials, pinProcess } from '../attestation'
import type { PeerCredentials, ProcessPin } from '../attestation'
import type { WorkloadAdmission, WorkloadRefusal } from './admission'

export interface CallerConnection {
  readonly credentials: PeerCredentials
  readonly pin: ProcessPin
}

export class ConnectionRegistry {
  readonly #connections = new Map<string, CallerConnection>()
  /** The deadline of each connection that has not yet started a call. */
  readonly #firstCall = new Map<string, NodeJS.Timeout>()
  readonly #admission: WorkloadAdmission
  #next = 0

  constructor (admission: WorkloadAdmission) {
    this.#admission = admission
  }

  /**
   * Reads the caller's credentials, admits its uid (admission.ts) and pins its process; returns false (socket
   * destroyed, the refusal counted and logged) when the caller cannot be identified or is over a limit.
   */
  accept (socket: Socket): boolean {
    let credentials: PeerCredentials
    try {
      credentials = peerCredentials(socket)
    } catch (err) {
      return this.#refuse(socket, 'unidentified', { err })
    }
    const caller = { uid: credentials.uid, pid: credentials.pid }
    // Admitted before anything is read from /proc: a refused connection in a flood costs one getsockopt.
    const refusal = this.#admission.admit(credentials.uid)
    if (refusal !== undefined) return this.#refuse(socket, refusal, caller)
    let pin: ProcessPin
    try {
      pin = pinProcess(credentials.pid)
    } catch (err) {
      this.#admission.release(credentials.uid)
      return this.#refuse(socket, 'unidentified', { ...caller, err })
    }
    const token = `workload-connection-${++this.#next}`
    Object.defineProperty(socket, 'remoteAddress', { value: token, configurable: false, enumerable: true })
    this.#connections.set(token, { credentials, pin })
    // The first call must start within the idle timeout: gRPC's own idle timer waits for a stream whose headers
    // never end, this one does not.
    this.#firstCall.set(token, setTimeout(() => { this.#refuse(socket, 'no_call', caller) }, this.#admission.limits.idleTimeoutMs))
    socket.once('close', () => {
      this.called(token)
      this.#connections.delete(token)
      this.#admission.release(credentials.uid)
    })
    return true
  }

  /** A call started on the connection `peer` (every call passes here, see server.ts): its deadline is met. */
  called (peer: string): void {
    clearTimeout(this.#firstCall.get(peer))
    this.#firstCall.delete(peer)
  }

  #refuse (socket: Socket, reason: WorkloadRefusal, fields: { uid?: number, pid?: number, err?: unknown }): false {
    this.#admission.refused(reason, fields)
    socket.destroy()
    return false
  }

  /** The connection of a call, by the peer grpc-js reports for it. */
  get (peer: string): CallerConnection | undefined {
    return this.#connections.get(peer)
  }

  get size (): number {
    return this.#connections.size
  }
}
