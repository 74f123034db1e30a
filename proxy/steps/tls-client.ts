/**
 * The TLS step of an outbound listener: mutual TLS to the target with our SVID, the server's chain verified to its
 * own trust domain's bundle and its ID checked against `expect`. TLS sessions are resumed, but only under the same
 * credentials epoch and expectation: a session verified for one peer is never offered to a connection expecting
 * another, and the chain of a resumed session is verified again.
 */
import { isIP } from 'node:net'
import { connect } from 'node:tls'
import type { TLSSocket } from 'node:tls'
import type { SpiffeId } from '../../spiffe/id'
import type { ExpectedPeer } from '../../spiffe/tls-peer'
import type { HostPort, ListenerConfig } from '../config'
import type { SidecarServices } from '../services'
import { handshakeFailed, verifyPeer } from './verify-peer'

export interface VerifiedConnection { readonly socket: TLSSocket, readonly serverId: SpiffeId }

const SESSIONS_LIMIT = 1024

/** Refused: the failure is already counted and logged. */
export class OutboundRefused extends Error {}

export class MtlsConnector {
  readonly #services: SidecarServices
  readonly #listener: ListenerConfig
  /** TLS sessions with the chain verified when each was made (a resumed session does not show it again). */
  #sessions = new Map<string, { session: Buffer, chain: Buffer[] }>()
  #sessionsEpoch = 0

  constructor (services: SidecarServices, listener: ListenerConfig) {
    this.#services = services
    this.#listener = listener
  }

  /** Connects to the listener's target, or to `target` (the explicit HTTP proxy's per-request destination). */
  async connect (expected: ExpectedPeer | undefined, expectedKey = '', target: HostPort = this.#listener.target): Promise<VerifiedConnection> {
    const { config, identity } = this.#services
    const state = identity.current
    if (state === undefined) throw this.#refuse('no-svid', 'no SVID yet from the Workload API', target)
    if (state.epoch !== this.#sessionsEpoch) {
      this.#sessions = new Map()
      this.#sessionsEpoch = state.epoch
    }
    const { host, port } = target
    const sessionKey = `${host}:${port}|${expectedKey}`
    const socket = connect({
      host,
      port,
      secureContext: state.clientContext,
      rejectUnauthorized: false,
      ...(isIP(host) === 0 ? { servername: host } : {})
    })
    const sessions = this.#sessions
    const known = sessions.get(sessionKey)
    // Set here, not in connect()'s options: given there, Node decodes the session (and the peer certificate in it)
    // twice, a tenth of a new connection's CPU. The handshake starts only once TCP connects, after this.
    if (known !== undefined) (socket as unknown as { setSession: (session: Buffer) => void }).setSession(known.session)
    let verifiedChain: Buffer[] | undefined
    socket.on('session', session => {
      if (verifiedChain === undefined) return
      // Bounded: the explicit proxy and transparent mode reach as many destinations as the app names.
      if (!sessions.has(sessionKey) && sessions.size >= SESSIONS_LIMIT) sessions.delete(sessions.keys().next().value as string)
      sessions.set(sessionKey, { session, chain: verifiedChain })
    })
    socket.setTimeout(config.handshakeTimeoutMs, () => { socket.destroy(Object.assign(new Error('TLS handshake timed out'), { code: 'ETIMEDOUT' })) })
    let established = false
    return await new Promise<VerifiedConnection>((resolve, reject) => {
      // Stays attached: errors after the handshake belong to the forward step, which adds its own handler.
      socket.on('error', (err: NodeJS.ErrnoException) => { if (!established) reject(this.#refuse(err.code ?? 'tls-error', err.message, target)) })
      socket.once('secureConnect', () => {
        socket.setTimeout(0)
        const peer = verifyPeer(this.#services, this.#listener, socket, expected, known?.chain)
        if (peer === undefined) {
          sessions.delete(sessionKey)
          socket.destroy()
          reject(new OutboundRefused('the server failed verification'))
          return
        }
        established = true
        verifiedChain = peer.chain
        // Per connection: the fields are built only when someone reads debug lines.
        const { logger } = this.#services
        if (logger.isLevelEnabled('debug')) logger.debug({ event: 'tls_connected', listener: this.#listener.name, target: `${host}:${port}`, peer: peer.id.toString(), resumed: socket.isSessionReused() }, 'outbound mTLS established')
        resolve({ socket, serverId: peer.id })
      })
    })
  }

  #refuse (reason: string, message: string, target: HostPort): OutboundRefused {
    handshakeFailed(this.#services, this.#listener, reason, message, `${target.host}:${target.port}`)
    return new OutboundRefused(message)
  }
}
