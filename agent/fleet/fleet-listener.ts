/**
 * The fleet's TCP port, as a SPIRE server's: TLS with the server's X509-SVID (`spiffe://<td>/spire/server`), a client
 * certificate asked for but not required (AttestAgent and GetBundle come without one), a client X509-SVID verified
 * against the trust domain's bundle at the handshake (one that does not verify ends the handshake, as SPIRE's
 * VerifyClientCertIfGiven does), then the connection handed to gRPC, which speaks HTTP/2 over the TLS socket. A call
 * finds its caller through the peer grpc-js reports: a token this listener gives each connection. The port faces the
 * network: handshakes must finish within 10 s (Node's `handshakeTimeout` only reports a late one: its connection is
 * closed here), connections are capped in all and per address (each refusal logged), and an idle one closes.
 */
import { constants } from 'node:crypto'
import { createServer } from 'node:tls'
import type { Server, TLSSocket } from 'node:tls'
import type { AddressInfo, Socket } from 'node:net'
import type { Logger } from 'pino'
import { RateLimitedLog } from '../../log/limited-log'
import type { SpiffeId } from '../../spiffe/id'
import { peerChainOf, verifyPeerChain } from '../../spiffe/tls-peer'
import type { X509BundleSource } from '../../spiffe/bundle-source'

/** Who is on a connection: the address, and the verified X509-SVID when the client presented one. */
export interface FleetCaller {
  readonly address: string
  readonly svid?: { readonly id: SpiffeId, readonly chain: readonly Buffer[] }
}

/** The server's own credential: PEM key and chain (leaf first). */
export interface ServerCredential { readonly keyPem: string, readonly chainPem: string }

export interface FleetListenerLimits {
  readonly handshakeTimeoutMs: number
  readonly maxConnections: number
  readonly maxConnectionsPerAddress: number
  readonly idleTimeoutMs: number
}

export const DEFAULT_FLEET_LIMITS: FleetListenerLimits = {
  handshakeTimeoutMs: 10_000,
  maxConnections: 4096,
  maxConnectionsPerAddress: 64,
  idleTimeoutMs: 300_000
}

export interface FleetListenerOptions {
  readonly host: string
  readonly port: number
  readonly credential: ServerCredential
  /** The trust domain's bundle now: client X509-SVIDs must verify to it. */
  readonly bundle: () => X509BundleSource
  /** Hands an established connection to gRPC. */
  readonly inject: (socket: TLSSocket) => void
  readonly logger: Logger
  readonly limits?: Partial<FleetListenerLimits>
}

export class FleetListener {
  readonly #server: Server
  readonly #options: FleetListenerOptions
  readonly #limits: FleetListenerLimits
  readonly #callers = new Map<string, FleetCaller>()
  readonly #perAddress = new Map<string, number>()
  readonly #refusals: RateLimitedLog
  #next = 0

  private constructor (options: FleetListenerOptions) {
    this.#options = options
    this.#limits = { ...DEFAULT_FLEET_LIMITS, ...options.limits }
    this.#refusals = new RateLimitedLog(options.logger)
    this.#server = createServer({
      ...this.#tlsOptions(options.credential),
      requestCert: true,
      rejectUnauthorized: false,
      ALPNProtocols: ['h2'],
      handshakeTimeout: this.#limits.handshakeTimeoutMs,
      // No session resumption: every connection's client certificate is verified in full, against the bundle now.
      secureOptions: constants.SSL_OP_NO_TICKET
    })
    this.#server.maxConnections = this.#limits.maxConnections
    this.#server.on('drop', (data?: { remoteAddress?: string }) => { this.#refuse(data?.remoteAddress ?? 'unknown', 'max_connections') })
    this.#server.on('connection', (socket: Socket) => { this.#admit(socket.remoteAddress ?? 'unknown', socket) })
    this.#server.on('secureConnection', socket => { this.#accept(socket) })
    // Node reports a handshake past `handshakeTimeout` here but leaves its connection open: it is closed here.
    this.#server.on('tlsClientError', (err: NodeJS.ErrnoException, socket) => {
      this.#refuse(socket.remoteAddress ?? 'unknown', err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT' ? 'handshake_timeout' : 'handshake_failed', err)
      socket.destroy()
    })
  }

  static async start (options: FleetListenerOptions): Promise<FleetListener> {
    const listener = new FleetListener(options)
    await new Promise<void>((resolve, reject) => {
      listener.#server.once('error', reject)
      listener.#server.listen(options.port, options.host, () => { listener.#server.off('error', reject); resolve() })
    })
    return listener
  }

  get address (): AddressInfo {
    return this.#server.address() as AddressInfo
  }

  /** The caller of a call, by the peer grpc-js reports for it; undefined once its connection closed. */
  caller (peer: string): FleetCaller | undefined {
    return this.#callers.get(peer)
  }

  /** New connections present `credential` (the server's renewed X509-SVID); established ones keep theirs. */
  setCredential (credential: ServerCredential): void {
    this.#server.setSecureContext(this.#tlsOptions(credential))
  }

  /** The TLS server, to stop with the gRPC server that serves its connections (agent/grpc-shutdown.ts). */
  get server (): Server {
    return this.#server
  }

  #tlsOptions (credential: ServerCredential): { key: string, cert: string, minVersion: 'TLSv1.2' } {
    return { key: credential.keyPem, cert: credential.chainPem, minVersion: 'TLSv1.2' }
  }

  /** Counts the TCP connection against its address before any TLS work; over the cap, it is closed at once. */
  #admit (address: string, socket: Socket): void {
    const count = (this.#perAddress.get(address) ?? 0) + 1
    this.#perAddress.set(address, count)
    socket.once('close', () => {
      const left = (this.#perAddress.get(address) ?? 1) - 1
      if (left === 0) this.#perAddress.delete(address)
      else this.#perAddress.set(address, left)
    })
    if (count > this.#limits.maxConnectionsPerAddress) {
      this.#refuse(address, 'max_connections_per_address')
      socket.destroy()
    }
  }

  #accept (socket: TLSSocket): void {
    const address = socket.remoteAddress ?? 'unknown'
    let svid: FleetCaller['svid']
    const presented = peerChainOf(socket.getPeerCertificate(true))
    if (presented.length > 0) {
      try {
        svid = { id: verifyPeerChain(presented, this.#options.bundle()), chain: presented }
      } catch (err) {
        this.#refuse(address, 'client_svid_invalid', err)
        socket.destroy()
        return
      }
    }
    const token = `fleet-connection-${++this.#next}`
    Object.defineProperty(socket, 'remoteAddress', { value: token, configurable: false, enumerable: true })
    Object.defineProperty(socket, 'remotePort', { value: undefined, configurable: false, enumerable: true })
    this.#callers.set(token, { address, ...(svid === undefined ? {} : { svid }) })
    socket.setTimeout(this.#limits.idleTimeoutMs, () => { socket.destroy() })
    socket.once('close', () => { this.#callers.delete(token) })
    this.#options.inject(socket)
  }

  #refuse (address: string, reason: string, err?: unknown): void {
    this.#refusals.warn(`${address} ${reason}`, { address, reason, ...(err === undefined ? {} : { err }) }, 'fleet: connection refused')
  }
}
