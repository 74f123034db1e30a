/**
 * Who is on each connection of a socket the agent accepts itself, from the kernel: SO_PEERCRED at accept, and the
 * caller's process start time pinned then (so a PID reused later is caught). gRPC calls find their connection
 * through a token the agent writes as the socket's remoteAddress (Unix sockets have none), which grpc-js reports as
 * the call's peer; the caller cannot influence it. The Workload API's connections are admitted too (admission.ts:
 * limits per uid, a deadline for the first call); the admin socket's are only named (ConnectionIdentities.track).
 */
import type { Socket } from 'node:net'
import { peerCredentials, pinProcess } from '../attestation'
import type { PeerCredentials, ProcessPin } from '../attestation'
import type { WorkloadAdmission, WorkloadRefusal } from './admission'

export interface CallerConnection {
  readonly credentials: PeerCredentials
  readonly pin: ProcessPin
}

/** The connections named so far, by token, each until it closes. */
export class ConnectionIdentities {
  readonly #connections = new Map<string, CallerConnection>()
  readonly #prefix: string
  #next = 0

  /** `prefix` starts each token (`workload-connection-1`, …); tokens only need to be unique per gRPC server. */
  constructor (prefix = 'workload-connection') {
    this.#prefix = prefix
  }

  /** Names the socket by a new token, and remembers who is on it until it closes (then `closed` is called). */
  add (socket: Socket, connection: CallerConnection, closed?: () => void): string {
    const token = `${this.#prefix}-${++this.#next}`
    Object.defineProperty(socket, 'remoteAddress', { value: token, configurable: false, enumerable: true })
    this.#connections.set(token, connection)
    socket.once('close', () => {
      this.#connections.delete(token)
      closed?.()
    })
    return token
  }

  /**
   * Names a connection of a socket that admits everyone its file mode lets in (the owner-only admin socket): never
   * refuses. One the kernel cannot describe (a caller in a PID namespace the agent cannot see, or one gone already)
   * stays unnamed, and the calls on it that need an identity fail. Returns whether it was named.
   */
  track (socket: Socket): boolean {
    try {
      const credentials = peerCredentials(socket)
      this.add(socket, { credentials, pin: pinProcess(credentials.pid) })
      return true
    } catch {
      return false
    }
  }

  /** The connection of a call, by the peer grpc-js reports for it. */
  get (peer: string): CallerConnection | undefined {
    return this.#connections.get(peer)
  }

  get size (): number {
    return this.#connections.size
  }
}

export class ConnectionRegistry {
  readonly #identities = new ConnectionIdentities()
  /** The deadline of each connection that has not yet started a call. */
  readonly #firstCall = new Map<string, NodeJS.Timeout>()
  readonly #admission: WorkloadAdmission

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
    const token = this.#identities.add(socket, { credentials, pin }, () => {
      this.called(token)
      this.#admission.release(credentials.uid)
    })
    // The first call must start within the idle timeout: gRPC's own idle timer waits for a stream whose headers
    // never end, this one does not.
    this.#firstCall.set(token, setTimeout(() => { this.#refuse(socket, 'no_call', caller) }, this.#admission.limits.idleTimeoutMs))
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
    return this.#identities.get(peer)
  }

  get size (): number {
    return this.#identities.size
  }
}
