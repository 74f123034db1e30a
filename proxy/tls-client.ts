/**
 * The TLS step of an outbound listener: mutual TLS to the target with our SVID, the server's chain verified to its
 * own trust domain's bundle and its ID checked against `expect`. TLS sessions are resumed, but only under the same
 * credentials epoch and expectation: a session verified for one peer is never offered to a connection expecting
 * another, and the chain of a resumed session is verified again.
 */
import { isIP } from 'node:net'
import { connect } from 'node:tls'
import type { TLSSocket } from 'node:tls'
import type { SpiffeId } from '../spiffe/id'
import type { ExpectedPeer } from '../spiffe/tls-peer'
import type { ListenerConfig } from './config'
import type { SidecarServices } from './services'
import { handshakeFailed, verifyPeer } from './verify-peer'

export interface VerifiedConnection { readonly socket: TLSSocket, readonly serverId: SpiffeId }

/** Refused: the failure is already counted and logged. */
export class OutboundRefused extends Error {}

export class MtlsConnector {
  readonly #services: SidecarServices
  readonly #listener: ListenerConfig
  #sessions = new Map<string, Buffer>()
  #sessionsEpoch = 0

  constructor (services: SidecarServices, listener: ListenerConfig) {
    this.#services = services
    this.#listener = listener
  }

  async connect (expected: ExpectedPeer | undefined, expectedKey = ''): Promise<VerifiedConnection> {
    const { config, identity } = this.#services
    const state = identity.current
    if (state === undefined) throw this.#refuse('no-svid', 'no SVID yet from the Workload API')
    if (state.epoch !== this.#sessionsEpoch) {
      this.#sessions = new Map()
      this.#sessionsEpoch = state.epoch
    }
    const { host, port } = this.#listener.target
    const socket = connect({
      host,
      port,
      secureContext: state.clientContext,
      rejectUnauthorized: false,
      ...(isIP(host) === 0 ? { servername: host } : {}),
      session: this.#sessions.get(expectedKey)
    })
    const sessions = this.#sessions
    socket.on('session', session => { sessions.set(expectedKey, session) })
    socket.setTimeout(config.handshakeTimeoutMs, () => { socket.destroy(Object.assign(new Error('TLS handshake timed out'), { code: 'ETIMEDOUT' })) })
    let established = false
    return await new Promise<VerifiedConnection>((resolve, reject) => {
      // Stays attached: errors after the handshake belong to the forward step, which adds its own handler.
      socket.on('error', (err: NodeJS.ErrnoException) => { if (!established) reject(this.#refuse(err.code ?? 'tls-error', err.message)) })
      socket.once('secureConnect', () => {
        socket.setTimeout(0)
        const serverId = verifyPeer(this.#services, this.#listener, socket, expected)
        if (serverId === undefined) {
          sessions.delete(expectedKey)
          socket.destroy()
          reject(new OutboundRefused('the server failed verification'))
          return
        }
        established = true
        resolve({ socket, serverId })
      })
    })
  }

  #refuse (reason: string, message: string): OutboundRefused {
    handshakeFailed(this.#services, this.#listener, reason, message, `${this.#listener.target.host}:${this.#listener.target.port}`)
    return new OutboundRefused(message)
  }
}
