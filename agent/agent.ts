/**
 * The agent process: opens the registration store and the CA in the data directory (the CA keeps its own rotation
 * schedule), serves the SPIFFE Workload API on the public socket, the admin API on its own socket, and SPIRE's
 * server API on a SPIRE-compatible socket, both of these over the one registration store; SPIRE's Delegated Identity
 * API on the admin socket and, when configured, on a socket of its own. In the device role
 * (`upstream:`), the CA's authorities come from the fleet's SPIRE server and the trust domain's bundle is polled from it.
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
import { stopGrpcOnSocket } from './grpc-shutdown'
import { WorkloadApiServer } from './workload/server'
import { SpireServerApi } from './spire-api'
import { DelegatedIdentityApi } from './delegated-identity'
import { startFleetFromConfig } from './fleet/fleet-from-config'
import { AgentMetrics } from './metrics/agent-metrics'
import { MetricsServer } from './metrics/metrics-server'
import { BundleEndpointServer } from './federation/bundle-endpoint-server'
import { Federation } from './federation/federation'
import type { FleetServer } from './fleet/fleet-server'
import { BundlePoll } from './upstream/bundle-poll'
import { deviceUpstreamFromConfig } from './upstream/device-from-config'
import type { DeviceUpstream } from './upstream/device-upstream'

export class Agent {
  readonly config: AgentConfig
  readonly store: RegistrationStore
  readonly ca: AgentCa
  readonly workloadApi: WorkloadApiServer
  readonly spireServerApi: SpireServerApi
  readonly #grpc: Server
  readonly #adminSocket: NetServer
  readonly #bundlePoll?: BundlePoll
  /** The upstream role's server, with `fleet:`. */
  readonly fleet?: FleetServer
  /** The Prometheus endpoint, with `metrics:`. */
  readonly metrics?: MetricsServer
  /** The trust domain's bundle endpoint, with `federation.bundleEndpoint`. */
  readonly bundleEndpoint?: BundleEndpointServer
  /** The federation relationships' fetchers. */
  readonly federation: Federation
  /** SPIRE's Delegated Identity API, for node proxies (on the admin socket, and `delegatedIdentitySocket`). */
  readonly delegatedIdentity: DelegatedIdentityApi

  private constructor (
    config: AgentConfig, store: RegistrationStore, ca: AgentCa, workloadApi: WorkloadApiServer, spireServerApi: SpireServerApi,
    grpc: Server, adminSocket: NetServer, federation: Federation,
    roles: { bundlePoll?: BundlePoll, fleet?: FleetServer, metrics?: MetricsServer, bundleEndpoint?: BundleEndpointServer, delegatedIdentity: DelegatedIdentityApi }
  ) {
    this.config = config
    this.store = store
    this.ca = ca
    this.workloadApi = workloadApi
    this.spireServerApi = spireServerApi
    this.#grpc = grpc
    this.#adminSocket = adminSocket
    this.#bundlePoll = roles.bundlePoll
    this.fleet = roles.fleet
    this.metrics = roles.metrics
    this.bundleEndpoint = roles.bundleEndpoint
    this.federation = federation
    this.delegatedIdentity = roles.delegatedIdentity
  }

  static async start (config: AgentConfig, logger: Logger): Promise<Agent> {
    // The data directory holds the CA's keys: owner only.
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 })
    const store = RegistrationStore.open({ dataDir: config.dataDir, trustDomain: config.trustDomain, logger })
    const attestorOptions = config.dockerSocket === undefined ? {} : { docker: { socketPath: config.dockerSocket } }
    let ca: AgentCa | undefined
    let workloadApi: WorkloadApiServer | undefined
    let adminGrpc: Server | undefined
    let adminSocket: NetServer | undefined
    let bundlePoll: BundlePoll | undefined
    let spireServerApi: SpireServerApi | undefined
    let fleet: FleetServer | undefined
    let metrics: MetricsServer | undefined
    let bundleEndpoint: BundleEndpointServer | undefined
    let federation: Federation | undefined
    let delegatedIdentity: DelegatedIdentityApi | undefined
    try {
      const device = config.upstream === undefined ? undefined : deviceUpstreamFromConfig(config.upstream, config.trustDomain)
      ca = await AgentCa.open({
        trustDomain: config.trustDomain,
        dataDir: config.dataDir,
        keyType: config.ca.keyType,
        caTtlSeconds: config.ca.ttlSeconds,
        x509SvidTtlSeconds: config.svid.x509TtlSeconds,
        jwtSvidTtlSeconds: config.svid.jwtTtlSeconds,
        jwtKeyType: config.svid.jwtKeyType,
        refreshHintSeconds: config.federation.refreshHintSeconds,
        ...(config.ca.upstream === undefined ? {} : { upstream: config.ca.upstream }),
        ...(device === undefined ? {} : { remoteUpstream: device }),
        logger
      })
      if (device !== undefined) bundlePoll = followUpstream(device, ca, logger)
      federation = Federation.start({ store, ca, config: config.federation, logger })
      workloadApi = await WorkloadApiServer.start({
        socketPath: config.socket,
        store,
        ca,
        logger,
        limits: config.workloadApi,
        attestor: attestorOptions
      })
      adminGrpc = new Server()
      adminGrpc.addService(AdminService().service, adminHandlers({ store, ca, workloadApi: workloadApi.admission, fleet: () => fleet, federation, logger }))
      delegatedIdentity = await DelegatedIdentityApi.start({
        authorizedDelegates: config.authorizedDelegates,
        ...(config.delegatedIdentitySocket === undefined ? {} : { socketPath: config.delegatedIdentitySocket }),
        ...(config.delegatedIdentitySocketGroup === undefined ? {} : { socketGroup: config.delegatedIdentitySocketGroup }),
        limits: config.workloadApi,
        attestor: attestorOptions,
        store,
        ca,
        cache: workloadApi.cache,
        logger
      }, adminGrpc)
      const injector = adminGrpc.createConnectionInjector(ServerCredentials.createInsecure())
      adminSocket = await listenUnixSocket(
        { path: config.adminSocket, mode: config.adminSocketGroup === undefined ? 0o600 : 0o660, ...(config.adminSocketGroup === undefined ? {} : { group: config.adminSocketGroup }) },
        socket => { delegatedIdentity?.trackAdminConnection(socket); injector.injectConnection(socket) }
      )
      spireServerApi = await SpireServerApi.start({
        socketPath: config.serverSocket,
        ...(config.serverSocketGroup === undefined ? {} : { group: config.serverSocketGroup }),
        adminWorkloads: config.serverSocketAdminWorkloads,
        attestor: attestorOptions,
        limits: config.workloadApi,
        trustDomain: config.trustDomain,
        store,
        ca,
        federation,
        logger
      })
      fleet = config.fleet === undefined ? undefined : await startFleetFromConfig(config.fleet, ca, store, logger)
      if (config.metrics !== undefined) {
        const registry = new AgentMetrics({ ca, store, federation, ...(bundlePoll === undefined ? {} : { bundlePoll }), ...(fleet === undefined ? {} : { fleet }) }).registry
        metrics = await MetricsServer.start({ ...config.metrics, registry, logger })
      }
      const endpoint = config.federation.bundleEndpoint
      if (endpoint !== undefined) bundleEndpoint = await BundleEndpointServer.start({ ...endpoint, ca, store, logger })
      return new Agent(config, store, ca, workloadApi, spireServerApi, adminGrpc, adminSocket, federation, { bundlePoll, fleet, metrics, bundleEndpoint, delegatedIdentity })
    } catch (err) {
      await metrics?.stop()
      await fleet?.stop()
      bundlePoll?.stop()
      federation?.stop()
      await spireServerApi?.stop()
      await delegatedIdentity?.stop()
      if (adminGrpc !== undefined && adminSocket !== undefined) await stopGrpcOnSocket(adminGrpc, adminSocket)
      await workloadApi?.stop()
      ca?.close()
      store.close()
      throw err
    }
  }

  /** Stops serving, then closes the CA and the store (nothing is lost: both are durable at every step). */
  async stop (): Promise<void> {
    await this.bundleEndpoint?.stop()
    await this.metrics?.stop()
    this.#bundlePoll?.stop()
    this.federation.stop()
    await this.fleet?.stop()
    await this.spireServerApi.stop()
    await this.delegatedIdentity.stop()
    await stopGrpcOnSocket(this.#grpc, this.#adminSocket)
    await this.workloadApi.stop()
    this.ca.close()
    this.store.close()
  }
}

/** The device role once the CA is open: the server known by the trust domain's latest roots, the bundle polled. */
function followUpstream (device: DeviceUpstream, ca: AgentCa, logger: Logger): BundlePoll {
  device.trust(ca.bundle().x509)
  ca.onBundleChange(bundle => { device.trust(bundle.x509) })
  return new BundlePoll({ upstream: device, ca, logger }).start()
}
