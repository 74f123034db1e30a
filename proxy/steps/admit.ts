/**
 * The admission step, right after a peer is verified and before it holds a slot (invariant 10): a peer no rule
 * can ever allow on this listener is refused at once, and no peer holds more than `maxConnectionsPerPeer` of a
 * listener's connections. A listener's own limit (`maxConnections`) is the server's; what it drops is counted
 * here too. Every refusal is counted in `chaperone_connections_refused_total{listener,reason}` and logged,
 * rate-limited per listener, reason and peer.
 */
import type { Server, Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import type { SpiffeId } from '../../spiffe/id'
import type { ListenerConfig } from '../config'
import type { SidecarServices } from '../services'
import { verifyPeer } from './verify-peer'
import type { VerifiedPeer } from './verify-peer'

export type RefusalReason = 'max_connections' | 'max_connections_per_peer' | 'max_handshakes_per_address' | 'no_allow_rule' | 'head_timeout' | 'too_many_headers' | 'head_too_large'

const WHY: Record<RefusalReason, string> = {
  max_connections: 'the listener has maxConnections open',
  max_connections_per_peer: 'the peer has maxConnectionsPerPeer open on this listener',
  max_handshakes_per_address: 'the address has maxConnectionsPerPeer handshakes under way on this listener',
  no_allow_rule: 'no rule of the policy can allow this peer on this listener',
  head_timeout: 'the request head did not arrive within timeouts.head',
  too_many_headers: 'the request has more header lines than http.maxHeaders',
  head_too_large: 'the request head is larger than http.maxHeadBytes'
}

/** Counts and logs (rate-limited) one refusal at a limit. */
export function refused (services: SidecarServices, listener: ListenerConfig, reason: RefusalReason, peer: string | undefined, remote: string | undefined): void {
  services.metrics.refused.inc({ listener: listener.name, reason })
  services.limitedLog.warn(`refused ${listener.name} ${reason} ${peer ?? remote ?? ''}`, {
    event: 'connection_refused', listener: listener.name, direction: listener.direction, reason, peer, remote
  }, `refused: ${WHY[reason]}`)
}

/** Applies the listener's connection limit to `server`, counting what it drops. */
export function limitConnections<T extends Server> (services: SidecarServices, listener: ListenerConfig, server: T): T {
  server.maxConnections = services.config.maxConnections
  server.on('drop', (data?: { remoteAddress?: string }) => { refused(services, listener, 'max_connections', undefined, data?.remoteAddress) })
  return server
}

/** A verified peer holding one of its connection slots, and this proxy's own ID. */
export interface AdmittedPeer { readonly peer: VerifiedPeer, readonly self: SpiffeId }

/** The peers admitted to one inbound listener, counted while their connections are open. */
export class PeerAdmission {
  readonly #services: SidecarServices
  readonly #listener: ListenerConfig
  readonly #open = new Map<string, number>()

  constructor (services: SidecarServices, listener: ListenerConfig) {
    this.#services = services
    this.#listener = listener
  }

  /**
   * Verifies the peer of `socket`, bound for the app at `port`, and admits it: the peer and this sidecar's own ID,
   * or undefined once the socket is closed (the reason counted and logged). `screen`: refuse a peer no rule can
   * allow here — for HTTP, whose requests are decided later; a TCP connection is decided at once, its rule logged.
   */
  accept (socket: TLSSocket, port: number, screen: boolean): AdmittedPeer | undefined {
    const peer = verifyPeer(this.#services, this.#listener, socket)
    if (peer !== undefined) return this.admit(socket, peer, port, screen)
    socket.destroy()
    return undefined
  }

  /** Admits a peer verified already (node mode's same-device caller, verified by its namespace), as `accept` does. */
  admit (socket: Socket, peer: VerifiedPeer, port: number, screen: boolean): AdmittedPeer | undefined {
    const self = this.#services.identity.current?.context.spiffeId
    if (self === undefined || (screen && !this.screen(socket, peer.id, self, port)) || !this.#admit(socket, peer.id)) {
      socket.destroy()
      return undefined
    }
    return { peer, self }
  }

  /** Whether some rule may allow `peer` to reach `self` at `port`; counts and logs the refusal when none can. */
  screen (socket: Socket, peer: SpiffeId, self: SpiffeId, port: number): boolean {
    if (this.#services.policy.mayAllow({ from: peer, to: self, port })) return true
    refused(this.#services, this.#listener, 'no_allow_rule', peer.toString(), socket.remoteAddress)
    return false
  }

  #admit (socket: Socket, peer: SpiffeId): boolean {
    const key = peer.toString()
    if ((this.#open.get(key) ?? 0) >= this.#services.config.maxConnectionsPerPeer) {
      refused(this.#services, this.#listener, 'max_connections_per_peer', key, socket.remoteAddress)
      return false
    }
    this.#open.set(key, (this.#open.get(key) ?? 0) + 1)
    socket.once('close', () => {
      const left = (this.#open.get(key) ?? 1) - 1
      if (left === 0) this.#open.delete(key)
      else this.#open.set(key, left)
    })
    return true
  }
}

/**
 * TLS handshakes under way on one inbound listener, by remote address. Before its handshake a client has no
 * identity to be limited by, so one that opens connections and never finishes the handshake is limited by its
 * address: no more than `maxConnectionsPerPeer` handshakes at a time (each ends at `timeouts.handshake` anyway).
 */
export class HandshakeSlots {
  readonly #services: SidecarServices
  readonly #listener: ListenerConfig
  readonly #pending = new Map<string, number>()
  /** How to release a connection's slot, by its TCP socket, until its handshake ends. */
  readonly #release = new Map<Socket, () => void>()

  constructor (services: SidecarServices, listener: ListenerConfig) {
    this.#services = services
    this.#listener = listener
  }

  /** A new TCP connection: closed at once when its address has too many handshakes under way, else counted. */
  opened (raw: Socket): void {
    const address = raw.remoteAddress ?? ''
    const pending = this.#pending.get(address) ?? 0
    if (pending >= this.#services.config.maxConnectionsPerPeer) {
      refused(this.#services, this.#listener, 'max_handshakes_per_address', undefined, address)
      raw.destroy()
      return
    }
    this.#pending.set(address, pending + 1)
    const release = (): void => {
      if (!this.#release.delete(raw)) return
      const left = (this.#pending.get(address) ?? 1) - 1
      if (left === 0) this.#pending.delete(address)
      else this.#pending.set(address, left)
    }
    this.#release.set(raw, release)
    raw.once('close', release)
  }

  /** The handshake of the connection over `raw` is done: its slot is free. */
  handshakeDone (raw: Socket | undefined): void {
    if (raw !== undefined) this.#release.get(raw)?.()
  }
}
