/**
 * The Workload API endpoint: a world-connectable Unix socket (like SPIRE's) that the agent accepts itself, reading
 * each caller's kernel credentials before grpc-js sees the connection. Serves SpiffeWorkloadAPI, the standard
 * gRPC health service and server reflection.
 */
import { Server, ServerCredentials, ServerInterceptingCall } from '@grpc/grpc-js'
import type { Server as NetServer } from 'node:net'
import { HealthImplementation } from 'grpc-health-check'
import type { Logger } from 'pino'
import type { AgentCa } from '../ca'
import type { RegistrationStore } from '../store'
import { WorkloadAttestor } from '../attestation'
import type { AttestorOptions } from '../attestation'
import { listenUnixSocket } from '../unix-socket'
import { stopGrpcOnSocket } from '../grpc-shutdown'
import { workloadApiService, workloadProtoPath } from '../../spiffe/workload-proto'
import { WorkloadAdmission } from './admission'
import type { WorkloadApiLimits } from './admission'
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
  readonly limits: WorkloadApiLimits
}

/**
 * Connections from many clients at once (every workload reconnecting after an agent restart) wait in the listen
 * queue; Node's default of 511 refuses the rest with EAGAIN. The kernel caps it at net.core.somaxconn.
 */
const LISTEN_BACKLOG = 4096
/** A server ping on a connection with calls in progress, answered within the timeout, or the connection is closed. */
const KEEPALIVE_MS = 30_000
const KEEPALIVE_TIMEOUT_MS = 10_000

/**
 * A gRPC server for connections a ConnectionRegistry admitted (the Workload API's, and other sockets served the
 * same way): every call meets its connection's first-call deadline; idle connections are closed (also one that
 * never completes its HTTP/2 preface or a call, and one left open after a malformed frame: nghttp2 answers it with
 * GOAWAY, but the connection stays until closed); connections with calls in progress are pinged.
 */
export function admittedConnectionsServer (connections: ConnectionRegistry, limits: WorkloadApiLimits): Server {
  return new Server({
    interceptors: [(_method, call) => { connections.called(call.getPeer()); return new ServerInterceptingCall(call) }],
    'grpc.max_connection_idle_ms': limits.idleTimeoutMs,
    'grpc.keepalive_time_ms': KEEPALIVE_MS,
    'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS
  })
}

export class WorkloadApiServer {
  readonly admission: WorkloadAdmission
  readonly connections: ConnectionRegistry
  readonly hub: StreamHub
  readonly cache: X509SvidCache
  readonly #grpc: Server
  readonly #socket: NetServer

  private constructor (admission: WorkloadAdmission, connections: ConnectionRegistry, hub: StreamHub, cache: X509SvidCache, grpc: Server, socket: NetServer) {
    this.admission = admission
    this.connections = connections
    this.hub = hub
    this.cache = cache
    this.#grpc = grpc
    this.#socket = socket
  }

  static async start (options: WorkloadServerOptions): Promise<WorkloadApiServer> {
    const { store, ca, logger } = options
    const admission = new WorkloadAdmission(options.limits, logger)
    const connections = new ConnectionRegistry(admission)
    const cache = new X509SvidCache(ca, logger)
    const hub = new StreamHub({ store, ca, cache, logger })
    const grpc = admittedConnectionsServer(connections, options.limits)
    const attestor = new WorkloadAttestor({ ...options.attestor, logger })
    grpc.addService(workloadApiService().service, workloadHandlers({ connections, admission, attestor, store, ca, hub, logger }))
    const health = new HealthImplementation({ '': 'SERVING', SpiffeWorkloadAPI: 'SERVING' })
    health.addToServer(grpc)
    addReflection(grpc, workloadProtoPath())
    const injector = grpc.createConnectionInjector(ServerCredentials.createInsecure())
    // World-connectable: every local process may ask; what it gets depends only on what the kernel says it is.
    const socket = await listenUnixSocket({ path: options.socketPath, mode: 0o666, backlog: LISTEN_BACKLOG }, conn => {
      if (connections.accept(conn)) injector.injectConnection(conn)
    })
    return new WorkloadApiServer(admission, connections, hub, cache, grpc, socket)
  }

  async stop (): Promise<void> {
    this.hub.close()
    this.cache.close()
    await stopGrpcOnSocket(this.#grpc, this.#socket)
  }
}
