/**
 * The TLS step of an outbound listener: mutual TLS to the target with our SVID, the server's chain verified to its
 * own trust domain's bundle and its ID checked against `expect` (in node mode, to the target's tunnel port, with
 * the tunnel header first once the server is verified). TLS sessions are resumed, but only under the same
 * credentials epoch and expectation: a session verified for one peer is never offered to a connection expecting
 * another, and the chain of a resumed session is verified again.
 */
import { isIP } from 'node:net'
import { connect } from 'node:tls'
import type { TLSSocket } from 'node:tls'
import { matchesIdPattern, parseIdPattern } from '../../policy/id-pattern'
import type { IdPattern } from '../../policy/id-pattern'
import type { SpiffeId } from '../../spiffe/id'
import type { ExpectedPeer } from '../../spiffe/tls-peer'
import type { ListenerConfig } from '../config'
import type { HostPort } from '../host-port'
import type { SidecarServices } from '../services'
import { handshakeFailed, verifyPeer } from './verify-peer'
import { tunnelHeader } from './tunnel-header'

export interface VerifiedConnection {
  readonly socket: TLSSocket
  readonly serverId: SpiffeId
  /** When the credentials of this connection expire, ours or the server's, whichever first (ms since the epoch). */
  readonly expiresAt: number
}

/** Bounded: the explicit proxy and transparent mode reach as many destinations (and expectations) as the app names. */
const SESSIONS_LIMIT = 1024
const EXPECTATIONS_LIMIT = 1024

/** OpenSSL's codes for an alert the peer sent, e.g. ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE, ERR_SSL_TLSV1_ALERT_UNKNOWN_CA. */
const RECEIVED_ALERT = /^ERR_SSL_.*_ALERT_/

/** Refused: the failure is already counted and logged. */
export class OutboundRefused extends Error {}

export class MtlsConnector {
  readonly #services: SidecarServices
  readonly #listener: ListenerConfig
  /** TLS sessions with the chain verified when each was made (a resumed session does not show it again). */
  #sessions = new Map<string, { session: Buffer, chain: Buffer[] }>()
  #sessionsEpoch = 0
  /** `expect` values parsed once each, not once per connection. */
  readonly #expectations = new Map<string, ExpectedPeer>()

  constructor (services: SidecarServices, listener: ListenerConfig) {
    this.#services = services
    this.#listener = listener
  }

  /** Connects to `target`, whose server must have an ID `expect` (an ID or a policy pattern) accepts, when given. */
  async connect (target: HostPort, expect: string | undefined): Promise<VerifiedConnection> {
    const { config, identity } = this.#services
    const state = identity.current
    if (state === undefined) throw this.#refuse('no-svid', 'no SVID yet from the Workload API', target)
    if (state.epoch !== this.#sessionsEpoch) {
      this.#sessions = new Map()
      this.#sessionsEpoch = state.epoch
    }
    const { host, port } = target
    // Node mode: to an app another node proxy serves, through its tunnel port, naming the port called.
    const tunnelPort = this.#services.tunnelTo?.(target)
    const address = tunnelPort === undefined ? target : { host, port: tunnelPort }
    const sessionKey = `${address.host}:${address.port}|${expect ?? ''}`
    const expected = this.expected(expect)
    const tcp = this.#services.dial(address, 'peer')
    const socket = connect({
      socket: tcp,
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
      if (!sessions.has(sessionKey) && sessions.size >= SESSIONS_LIMIT) sessions.delete(sessions.keys().next().value as string)
      sessions.set(sessionKey, { session, chain: verifiedChain })
    })
    socket.setTimeout(config.handshakeTimeoutMs, () => { socket.destroy(Object.assign(new Error('TLS handshake timed out'), { code: 'ETIMEDOUT' })) })
    let established = false
    return await new Promise<VerifiedConnection>((resolve, reject) => {
      // Stays attached: errors after the handshake belong to the forward step, which adds its own handler. In TLS 1.3
      // the server checks our certificate after our side of the handshake is done: its refusal arrives as an alert
      // on an established socket, and is logged as the handshake failure it is, not lost as a silent close.
      socket.on('error', (err: NodeJS.ErrnoException) => {
        if (!established) reject(this.#refuse(err.code ?? 'tls-error', err.message, target))
        else if (RECEIVED_ALERT.test(err.code ?? '')) this.#refuse(err.code as string, `the server refused our certificate: ${err.message}`, target)
      })
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
        if (tunnelPort !== undefined) socket.write(tunnelHeader({ host: tcp.localAddress ?? '', port: tcp.localPort ?? 0 }, target))
        // Per connection: the fields are built only when someone reads debug lines.
        const { logger } = this.#services
        if (logger.isLevelEnabled('debug')) logger.debug({ event: 'tls_connected', listener: this.#listener.name, target: `${host}:${port}`, peer: peer.id.toString(), resumed: socket.isSessionReused() }, 'outbound mTLS established')
        resolve({ socket, serverId: peer.id, expiresAt: Math.min(peer.notAfter, state.context.notAfter.getTime()) })
      })
    })
  }

  /** `expect` as a peer check: an exact ID or a pattern of the policy's syntax (checked when the config was read). */
  expected (expect: string | undefined): ExpectedPeer | undefined {
    if (expect === undefined) return undefined
    let expected = this.#expectations.get(expect)
    if (expected === undefined) {
      const pattern = parseIdPattern(expect) as IdPattern
      if (this.#expectations.size >= EXPECTATIONS_LIMIT) this.#expectations.clear()
      expected = Object.assign((id: SpiffeId) => matchesIdPattern(pattern, id.toString()), { description: expect })
      this.#expectations.set(expect, expected)
    }
    return expected
  }

  #refuse (reason: string, message: string, target: HostPort): OutboundRefused {
    handshakeFailed(this.#services, this.#listener, reason, message, `${target.host}:${target.port}`)
    return new OutboundRefused(message)
  }
}
