/**
 * The Workload API endpoint: a world-connectable Unix socket (like SPIRE's) that the agent accepts itself, reading
 * each caller's kernel credentials before grpc-js sees the connection. Serves SpiffeWorkloadAPI, the standard
 * gRPC health service and server reflection.
 */
import { Server, ServerCredentials } from '@grpc/grpc-js'
import type { Server as NetServer } from 'node:net'
import { HealthImplementation } from 'grpc-health-check'
import type { Logger } from 'pino'
import type { AgentCa } from '../ca'
import type { RegistrationStore } from '../store'
import { WorkloadAttestor } from '../attestation'
import type { AttestorOptions } from '../attestation'
import { listenUnixSocket } from '../unix-socket'
import { workloadApiService, workloadProtoPath } from '../../spiffe/workload-proto'
import { ConnectionRegistry } from './connections'
import { X509SvidCache } from './svid-cache'
import { StreamHub } from './stream-hub'
import { workloadHandlers } from './service'
import { addReflection } from './reflection'

export interface WorkloadServerOptions {
  readonly socketPath: string
  readonly store: RegistrationStore
  readonly ca: AgentCa
  readonly logger: Logger
  readonly attestor?: AttestorOptions
}

export class WorkloadApiServer {
  readonly connections: ConnectionRegistry
  readonly hub: StreamHub
  readonly cache: X509SvidCache
  readonly #grpc: Server
  readonly #socket: NetServer

  private constructor (connections: ConnectionRegistry, hub: StreamHub, cache: X509SvidCache, grpc: Server, socket: NetServer) {
    this.connections = connections
    this.hub = hub
    this.cache = cache
    this.#grpc = grpc
    this.#socket = socket
  }

  static async start (options: WorkloadServerOptions): Promise<WorkloadApiServer> {
    const { store, ca, logger } = options
    const connections = new ConnectionRegistry(logger)
    const cache = new X509SvidCache(ca, logger)
    const hub = new StreamHub({ store, ca, cache, logger })
    const grpc = new Server()
    const attestor = new WorkloadAttestor({ ...options.attestor, logger })
    grpc.addService(workloadApiService().service, workloadHandlers({ connections, attestor, store, ca, hub, logger }))
    const health = new HealthImplementation({ '': 'SERVING', SpiffeWorkloadAPI: 'SERVING' })
    health.addToServer(grpc)
    addReflection(grpc, workloadProtoPath())
    const injector = grpc.createConnectionInjector(ServerCredentials.createInsecure())
    // World-connectable: every local process may ask; what it gets depends only on what the kernel says it is.
    const socket = await listenUnixSocket({ path: options.socketPath, mode: 0o666 }, conn => {
      if (connections.accept(conn)) injector.injectConnection(conn)
    })
    return new WorkloadApiServer(connections, hub, cache, grpc, socket)
  }

  async stop (): Promise<void> {
    this.hub.close()
    this.cache.close()
    const socketClosed = new Promise<void>(resolve => { this.#socket.close(() => resolve()) })
    const force = setTimeout(() => { this.#grpc.forceShutdown() }, 5_000)
    await new Promise<void>(resolve => { this.#grpc.tryShutdown(() => resolve()) })
    clearTimeout(force)
    await socketClosed
  }
}
