/**
 * The SPIRE-compatible server API socket: a Unix socket like SPIRE server's (default /tmp/spire-server/private/
 * api.sock, its directory 0750, the socket 0770, optionally given to a group), where SPIRE's tools and
 * orchestrators written for SPIRE reach the agent's registration store. Who may connect is decided by the
 * socket's mode and group, as for SPIRE's local callers. Serves the Entry, Bundle and Agent services and the
 * standard health service (`spire-server healthcheck`); any other method answers UNIMPLEMENTED, naming it.
 */
import { Server, ServerCredentials } from '@grpc/grpc-js'
import type { Server as NetServer } from 'node:net'
import { HealthImplementation } from 'grpc-health-check'
import type { Logger } from 'pino'
import type { TrustDomain } from '../../spiffe/id'
import { stopGrpcOnSocket } from '../grpc-shutdown'
import type { RegistrationStore } from '../store'
import { listenUnixSocket } from '../unix-socket'
import type { AgentCa } from '../ca'
import { agentHandlers } from './agent-service'
import { bundleHandlers } from './bundle-service'
import { CallerRegistry } from './callers'
import { entryHandlers } from './entry-service'
import { AgentService, BundleService, EntryService } from './grpc-proto'

export interface SpireServerApiOptions {
  readonly socketPath: string
  /** Group (name or gid) given the socket (and the folders made for it); without one, the agent's own group. */
  readonly group?: string
  readonly trustDomain: TrustDomain
  readonly store: RegistrationStore
  /** Our own trust domain's bundle (GetBundle). */
  readonly ca: AgentCa
  readonly logger: Logger
}

/** SPIRE server's modes (pkg/server/endpoints): its own user and group only. */
const DIRECTORY_MODE = 0o750
const SOCKET_MODE = 0o770
/** The services served, by their full names (each with its health status). */
const SERVICES = ['spire.api.server.entry.v1.Entry', 'spire.api.server.bundle.v1.Bundle', 'spire.api.server.agent.v1.Agent']

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
    const callers = new CallerRegistry()
    const grpc = new Server()
    const ctx = { trustDomain: options.trustDomain.name, agentId: store.agentId }
    grpc.addService(EntryService().service, entryHandlers({ store, ctx, logger, callers }))
    grpc.addService(BundleService().service, bundleHandlers({ store, ctx, ca: options.ca, logger, callers }))
    grpc.addService(AgentService().service, agentHandlers({ store, trustDomain: ctx.trustDomain, logger, callers }))
    new HealthImplementation(Object.fromEntries(['', ...SERVICES].map(name => [name, 'SERVING' as const]))).addToServer(grpc)
    const injector = grpc.createConnectionInjector(ServerCredentials.createInsecure())
    const socket = await listenUnixSocket({
      path: options.socketPath,
      mode: SOCKET_MODE,
      ...(options.group === undefined ? {} : { group: options.group }),
      directory: { mode: DIRECTORY_MODE, private: true }
    }, connection => {
      callers.accept(connection)
      injector.injectConnection(connection)
    })
    logger.info({ socket: options.socketPath, agentId: store.agentId }, 'SPIRE server API listening')
    return new SpireServerApi(options.socketPath, grpc, socket)
  }

  /** Stops accepting, ends the calls in progress, and closes the socket. */
  async stop (): Promise<void> {
    await stopGrpcOnSocket(this.#grpc, this.#socket)
  }
}
