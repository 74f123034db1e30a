/**
 * The SPIRE-compatible server API socket: a Unix socket like SPIRE server's (default /tmp/spire-server/private/
 * api.sock, its directory 0750, the socket 0770, optionally given to a group), where SPIRE's tools and
 * orchestrators written for SPIRE reach the agent's registration store. Who may call is decided by the socket's
 * mode and group, as for SPIRE's local callers, and, when admin workloads are let in (the socket then 0777 in a
 * 0755 directory), by the caller's entries: authorization.ts checks every call. Serves the Entry, Bundle, Agent and
 * TrustDomain services and the standard health service (`spire-server healthcheck`); any other method answers
 * UNIMPLEMENTED, naming it.
 */
import { Server, ServerCredentials } from '@grpc/grpc-js'
import type { Server as NetServer } from 'node:net'
import { HealthImplementation } from 'grpc-health-check'
import type { Logger } from 'pino'
import type { TrustDomain } from '../../spiffe/id'
import { stopGrpcOnSocket } from '../grpc-shutdown'
import type { RegistrationStore } from '../store'
import { listenUnixSocket } from '../unix-socket'
import { WorkloadAttestor } from '../attestation'
import type { AttestorOptions } from '../attestation'
import type { AgentCa } from '../ca'
import { agentHandlers } from './agent-service'
import { CallerAuthorization } from './authorization'
import { bundleHandlers } from './bundle-service'
import { CallerRegistry } from './callers'
import { WorkloadAdmission } from '../workload/admission'
import type { WorkloadApiLimits } from '../workload/admission'
import { ConnectionRegistry } from '../workload/connections'
import { entryHandlers } from './entry-service'
import { AgentService, BundleService, EntryService, TrustDomainService } from './grpc-proto'
import { trustDomainHandlers } from './trust-domain-service'
import type { BundleRefresher } from './trust-domain-service'

export interface SpireServerApiOptions {
  readonly socketPath: string
  /** Group (name or gid) given the socket (and the folders made for it); without one, the agent's own group. */
  readonly group?: string
  /** Let workloads attested to an entry with `admin: true` call too: the socket opens to every local user. */
  readonly adminWorkloads?: boolean
  /** How callers are attested (the Workload API's settings: the Docker socket). */
  readonly attestor?: AttestorOptions
  /** Connection limits: the Workload API's (per uid, reserved descriptors, first-call deadline and idle timeout). */
  readonly limits: WorkloadApiLimits
  readonly trustDomain: TrustDomain
  readonly store: RegistrationStore
  /** Our own trust domain's bundle (GetBundle). */
  readonly ca: AgentCa
  readonly logger: Logger
  /** The agent's federation, which RefreshBundle asks for a fetch (none: RefreshBundle answers UNIMPLEMENTED). */
  readonly federation?: BundleRefresher
}

/** SPIRE server's modes (pkg/server/endpoints): its own user and group only; with admin workloads, every user. */
const MODES = { local: { directory: 0o750, socket: 0o770 }, adminWorkloads: { directory: 0o755, socket: 0o777 } }
/** The services served, by their full names (each with its health status). */
const SERVICES = ['spire.api.server.entry.v1.Entry', 'spire.api.server.bundle.v1.Bundle', 'spire.api.server.agent.v1.Agent', 'spire.api.server.trustdomain.v1.TrustDomain']

export class SpireServerApi {
  readonly socketPath: string
  readonly #grpc: Server
  readonly #socket: NetServer

  private constructor (socketPath: string, grpc: Server, socket: NetServer) {
    this.socketPath = socketPath
    this.#grpc = grpc
    this.#socket = socket
  }

  static async start (options: SpireServerApiOptions): Promise<SpireServerApi> {
    const { store } = options
    const logger = options.logger.child({ component: 'spire-server-api' })
    // Connections are admitted as on the Workload API socket, with its limits: per uid, descriptors kept in reserve, a
    // deadline for the first call, idle ones closed (DESIGN.md invariant 10; the socket may be open to every user).
    const admission = new WorkloadAdmission(options.limits, logger, undefined, 'SPIRE server API')
    const connections = new ConnectionRegistry(admission)
    const callers = new CallerRegistry(connections)
    const attestor = new WorkloadAttestor({ ...options.attestor, logger })
    const authorization = new CallerAuthorization({ socketPath: options.socketPath, callers, admission, attestor, store, logger })
    const grpc = new Server({
      interceptors: [authorization.interceptor(peer => { connections.called(peer) })],
      'grpc.max_connection_idle_ms': options.limits.idleTimeoutMs
    })
    const modes = options.adminWorkloads === true ? MODES.adminWorkloads : MODES.local
    const ctx = { trustDomain: options.trustDomain.name, agentId: store.agentId }
    grpc.addService(EntryService().service, entryHandlers({ store, ctx, logger, callers }))
    grpc.addService(BundleService().service, bundleHandlers({ store, ctx, ca: options.ca, logger, callers }))
    grpc.addService(AgentService().service, agentHandlers({ store, trustDomain: ctx.trustDomain, logger, callers }))
    grpc.addService(TrustDomainService().service, trustDomainHandlers({ store, ctx, logger, callers, ...options.federation === undefined ? {} : { federation: options.federation } }))
    new HealthImplementation(Object.fromEntries(['', ...SERVICES].map(name => [name, 'SERVING' as const]))).addToServer(grpc)
    const injector = grpc.createConnectionInjector(ServerCredentials.createInsecure())
    const socket = await listenUnixSocket({
      path: options.socketPath,
      mode: modes.socket,
      ...(options.group === undefined ? {} : { group: options.group }),
      directory: { mode: modes.directory, private: true, widen: options.adminWorkloads === true }
    }, connection => {
      if (connections.accept(connection)) injector.injectConnection(connection)
    })
    logger.info({ socket: options.socketPath, agentId: store.agentId, adminWorkloads: options.adminWorkloads === true }, 'SPIRE server API listening')
    return new SpireServerApi(options.socketPath, grpc, socket)
  }

  /** Stops accepting, ends the calls in progress, and closes the socket. */
  async stop (): Promise<void> {
    await stopGrpcOnSocket(this.#grpc, this.#socket)
  }
}
