/**
 * The agent process: opens the registration store and the CA in the data directory (the CA keeps its own rotation
 * schedule), serves the SPIFFE Workload API on the public socket and the admin API on its own socket.
 */
import { mkdirSync } from 'node:fs'
import { Server, ServerCredentials } from '@grpc/grpc-js'
import type { Server as NetServer } from 'node:net'
import type { Logger } from 'pino'
import type { AgentConfig } from './config'
import { RegistrationStore } from './store'
import { AgentCa } from './ca'
import { AdminService } from './admin/grpc-proto'
import { adminHandlers } from './admin/service'
import { listenUnixSocket } from './unix-socket'
import { WorkloadApiServer } from './workload/server'

export class Agent {
  readonly config: AgentConfig
  readonly store: RegistrationStore
  readonly ca: AgentCa
  readonly workloadApi: WorkloadApiServer
  readonly #grpc: Server
  readonly #adminSocket: NetServer

  private constructor (config: AgentConfig, store: RegistrationStore, ca: AgentCa, workloadApi: WorkloadApiServer, grpc: Server, adminSocket: NetServer) {
    this.config = config
    this.store = store
    this.ca = ca
    this.workloadApi = workloadApi
    this.#grpc = grpc
    this.#adminSocket = adminSocket
  }

  static async start (config: AgentConfig, logger: Logger): Promise<Agent> {
    // The data directory holds the CA's keys: owner only.
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 })
    const store = RegistrationStore.open({ dataDir: config.dataDir, trustDomain: config.trustDomain, logger })
    let ca: AgentCa | undefined
    let workloadApi: WorkloadApiServer | undefined
    try {
      ca = await AgentCa.open({
        trustDomain: config.trustDomain,
        dataDir: config.dataDir,
        keyType: config.ca.keyType,
        caTtlSeconds: config.ca.ttlSeconds,
        x509SvidTtlSeconds: config.svid.x509TtlSeconds,
        jwtSvidTtlSeconds: config.svid.jwtTtlSeconds,
        jwtKeyType: config.svid.jwtKeyType,
        ...(config.ca.upstream === undefined ? {} : { upstream: config.ca.upstream }),
        logger
      })
      workloadApi = await WorkloadApiServer.start({
        socketPath: config.socket,
        store,
        ca,
        logger,
        limits: config.workloadApi,
        attestor: config.dockerSocket === undefined ? {} : { docker: { socketPath: config.dockerSocket } }
      })
      const grpc = new Server()
      grpc.addService(AdminService().service, adminHandlers({ store, ca, workloadApi: workloadApi.admission, logger }))
      const injector = grpc.createConnectionInjector(ServerCredentials.createInsecure())
      const adminSocket = await listenUnixSocket(
        { path: config.adminSocket, mode: config.adminSocketGroup === undefined ? 0o600 : 0o660, ...(config.adminSocketGroup === undefined ? {} : { group: config.adminSocketGroup }) },
        socket => { injector.injectConnection(socket) }
      )
      return new Agent(config, store, ca, workloadApi, grpc, adminSocket)
    } catch (err) {
      await workloadApi?.stop()
      ca?.close()
      store.close()
      throw err
    }
  }

  /** Stops serving, then closes the CA and the store (nothing is lost: both are durable at every step). */
  async stop (): Promise<void> {
    // Stop accepting first; the socket closes once gRPC has ended the sessions on its connections.
    const socketClosed = new Promise<void>(resolve => { this.#adminSocket.close(() => resolve()) })
    const force = setTimeout(() => { this.#grpc.forceShutdown() }, 5_000)
    await new Promise<void>(resolve => { this.#grpc.tryShutdown(() => resolve()) })
    clearTimeout(force)
    await socketClosed
    await this.workloadApi.stop()
    this.ca.close()
    this.store.close()
  }
}
