/**
 * The upstream role: this agent's CA serves a fleet on a TCP port as a SPIRE server serves its agents and nested
 * servers, so Chaperone devices (and SPIRE's own agents and servers) attest to it with x509pop and nest under it.
 * The port (fleet-listener.ts) presents the server's X509-SVID (server-svid.ts); gRPC serves AttestAgent
 * (attest-agent-handler.ts), GetAuthorizedEntries, BatchNewX509SVID, NewDownstreamX509CA, GetBundle and
 * PublishJWTAuthority (fleet-services.ts), each call authorized first (fleet-authorization.ts). Other methods
 * answer UNIMPLEMENTED.
 */
import { Server, ServerCredentials } from '@grpc/grpc-js'
import { X509Certificate } from 'node:crypto'
import type { Logger } from 'pino'
import type { AgentCa } from '../ca'
import { stopGrpcOnSocket } from '../grpc-shutdown'
import type { RegistrationStore } from '../store'
import { AgentAttestationService, BundleService, EntryService, SvidClientService } from '../spire-api/grpc-proto'
import { AttestAgentHandler } from './attest-agent-handler'
import { cancelledCallsInterceptor } from './cancelled-calls'
import { FleetAuthorization } from './fleet-authorization'
import { DEFAULT_FLEET_LIMITS, FleetListener } from './fleet-listener'
import type { FleetListenerLimits } from './fleet-listener'
import { fleetServices } from './fleet-services'
import { FleetRefusals } from './refusals'
import { ServerSvid } from './server-svid'
import { X509popVerifier } from './x509pop-verifier'

export interface FleetServerOptions {
  readonly host: string
  readonly port: number
  readonly ca: AgentCa
  readonly store: RegistrationStore
  /** The manufacturers' roots birth certificates must chain to (SPIRE's x509pop `ca_bundle_path`). */
  readonly manufacturerRoots: readonly X509Certificate[]
  readonly logger: Logger
  /** The port's limits (fleet-listener.ts); attestations in progress are capped by the same numbers as connections. */
  readonly limits?: Partial<FleetListenerLimits>
  /** How long one AttestAgent call may take, start to end; 30 s unless set. */
  readonly attestTimeoutMs?: number
}

/** gRPC's default, stated: the largest message a caller may send (larger ones end the call RESOURCE_EXHAUSTED). */
const MAX_MESSAGE_BYTES = 4 * 1024 * 1024
/** Streams one connection may have open at once (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS; RFC 9113 §6.5.2 advises
 * no fewer than 100): without it grpc-js admits 2^32-1, and each open call holds memory until the connection closes. */
const MAX_STREAMS_PER_CONNECTION = 100

/** What the fleet port refused since start, by reason: attestations and calls. */
export interface FleetStatus {
  readonly attestationsRefused: Readonly<Record<string, number>>
  readonly callsRefused: Readonly<Record<string, number>>
}

export class FleetServer {
  readonly #listener: FleetListener
  readonly #grpc: Server
  readonly #serverSvid: ServerSvid
  readonly #attestRefusals: FleetRefusals
  readonly #authorization: FleetAuthorization

  private constructor (listener: FleetListener, grpc: Server, serverSvid: ServerSvid, attestRefusals: FleetRefusals, authorization: FleetAuthorization) {
    this.#listener = listener
    this.#grpc = grpc
    this.#serverSvid = serverSvid
    this.#attestRefusals = attestRefusals
    this.#authorization = authorization
  }

  static async start (options: FleetServerOptions): Promise<FleetServer> {
    const { ca, store, logger } = options
    const limits: FleetListenerLimits = { ...DEFAULT_FLEET_LIMITS, ...options.limits }
    let listener: FleetListener | undefined
    const callers = { caller: (peer: string) => listener?.caller(peer) }
    const callerLog = { of: (peer: string) => { const caller = callers.caller(peer); return { address: caller?.address, spiffeId: caller?.svid?.id.toString() } } }
    const authorization = new FleetAuthorization({ callers, store, logger })
    const addressOf = (peer: string): string => callers.caller(peer)?.address ?? 'unknown'
    const verifier = new X509popVerifier({ trustDomain: ca.trustDomain, manufacturerRoots: options.manufacturerRoots })
    const attestRefusals = new FleetRefusals(logger, 'fleet: attestation refused')
    const attest = new AttestAgentHandler({
      refusals: attestRefusals,
      verifier,
      isBanned: agentId => store.agents.get(agentId.toString())?.banned === true,
      signAgentSvid: async (agentId, csr) => {
        const svid = await ca.mintX509SvidFromCsr(csr, { spiffeId: agentId })
        return { chain: svid.chain, expiresAt: svid.expiresAt, serial: new X509Certificate(svid.chain[0]).serialNumber }
      },
      record: (result, svid) => {
        store.agents.record({
          spiffeId: result.agentId.toString(),
          attestationType: 'x509pop',
          selectors: result.selectors,
          serialNumber: BigInt(`0x${svid.serial}`),
          expiresAt: Math.floor(svid.expiresAt.getTime() / 1000),
          canReattest: result.canReattest
        })
      },
      addressOf,
      logger,
      ...(options.attestTimeoutMs === undefined ? {} : { timeoutMs: options.attestTimeoutMs }),
      limits: { perAddress: limits.maxConnectionsPerAddress, total: limits.maxConnections }
    })
    const services = fleetServices({ store, ca, authorization, callers: callerLog, logger })
    const grpc = new Server({
      // The authorization comes after (around) the log of cancelled calls: its refusals are answers.
      interceptors: [cancelledCallsInterceptor({ refusals: authorization.refusals, addressOf, maxMessageBytes: MAX_MESSAGE_BYTES }), authorization.interceptor()],
      'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
      'grpc.max_concurrent_streams': MAX_STREAMS_PER_CONNECTION
    })
    grpc.addService(AgentAttestationService().service, { AttestAgent: attest.handle, ...services.agent })
    grpc.addService(EntryService().service, services.entry)
    grpc.addService(SvidClientService().service, services.svid)
    grpc.addService(BundleService().service, services.bundle)
    const injector = grpc.createConnectionInjector(ServerCredentials.createInsecure())
    const serverSvid = await ServerSvid.start(ca, credential => { listener?.setCredential(credential) }, logger)
    try {
      listener = await FleetListener.start({
        host: options.host,
        port: options.port,
        credential: serverSvid.credential,
        bundle: () => store.ownBundle(ca.bundle()),
        inject: socket => { injector.injectConnection(socket) },
        logger,
        limits
      })
    } catch (err) {
      serverSvid.stop()
      injector.destroy()
      throw err
    }
    logger.info({ address: `${options.host}:${listener.address.port}` }, 'fleet: serving devices')
    return new FleetServer(listener, grpc, serverSvid, attestRefusals, authorization)
  }

  get port (): number {
    return this.#listener.address.port
  }

  /** host:port the port listens on ([v6]:port for IPv6). */
  get address (): string {
    const { address, port } = this.#listener.address
    return `${address.includes(':') ? `[${address}]` : address}:${port}`
  }

  status (): FleetStatus {
    return { attestationsRefused: this.#attestRefusals.counts(), callsRefused: this.#authorization.refusals.counts() }
  }

  async stop (): Promise<void> {
    this.#serverSvid.stop()
    await stopGrpcOnSocket(this.#grpc, this.#listener.server)
  }
}
