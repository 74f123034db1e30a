/**
 * Who is on each connection of the SPIRE server API socket, from the kernel (SO_PEERCRED at accept): the caller's
 * uid and pid for the log of every change. As on the Workload API socket, a call finds its connection through a
 * token the agent writes as the socket's remoteAddress, which grpc-js reports as the call's peer.
 */
import type { Socket } from 'node:net'
import { peerCredentials } from '../attestation'
import type { PeerCredentials } from '../attestation'

/** What the log says of a caller whose credentials could not be read. */
export const UNKNOWN_CALLER = Object.freeze({ uid: -1, pid: -1 })

export class CallerRegistry {
  readonly #callers = new Map<string, Pick<PeerCredentials, 'uid' | 'pid'>>()
  #next = 0

  /** Records the connection's caller until it closes. */
  accept (socket: Socket): void {
    let caller: Pick<PeerCredentials, 'uid' | 'pid'> = UNKNOWN_CALLER
    try {
      const { uid, pid } = peerCredentials(socket)
      caller = Object.freeze({ uid, pid })
    } catch {
      // Only the log loses: access to the socket is decided by its mode and group.
    }
    const token = `spire-server-api-connection-${++this.#next}`
    Object.defineProperty(socket, 'remoteAddress', { value: token, configurable: false, enumerable: true })
    this.#callers.set(token, caller)
    socket.once('close', () => { this.#callers.delete(token) })
  }

  /** The caller on the connection a call reports as its peer. */
  of (peer: string): Pick<PeerCredentials, 'uid' | 'pid'> {
    return this.#callers.get(peer) ?? UNKNOWN_CALLER
  }
}
