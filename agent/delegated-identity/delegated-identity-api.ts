/**
 * The Delegated Identity API as the agent serves it: on the admin socket, as SPIRE's agent serves it on its admin
 * socket, and, when configured, on a socket of its own. Both share one authorization (the configured delegates),
 * one attestor for the PIDs delegates name, and one set of subscriptions, which take their SVIDs from the Workload
 * API's cache, so a workload and its delegate hold the same SVID, renewed once.
 */
import type { Server } from '@grpc/grpc-js'
import type { Socket } from 'node:net'
import type { Logger } from 'pino'
import { WorkloadAttestor } from '../attestation'
import type { AttestorOptions } from '../attestation'
import type { AgentCa } from '../ca'
import type { RegistrationStore } from '../store'
import type { WorkloadApiLimits } from '../workload/admission'
import { ConnectionIdentities } from '../workload/connections'
import type { X509SvidCache } from '../workload/svid-cache'
import { listenDedicatedSocket } from './dedicated-socket'
import type { DedicatedSocket } from './dedicated-socket'
import { DelegateAuthorization } from './delegate-authorization'
import { delegatedIdentityService } from '../../spiffe/delegated-identity-proto'
import { delegatedIdentityHandlers } from './service'
import { DelegatedSubscriptions } from './subscriptions'

export interface DelegatedIdentityOptions {
  /** Canonical SPIFFE IDs (the agent's configuration checked them); none: every call is refused. */
  readonly authorizedDelegates: readonly string[]
  /** A socket serving this API alone; without one, only the admin socket serves it. */
  readonly socketPath?: string
  /** The group given that socket (0660); without one it is 0666. */
  readonly socketGroup?: string
  /** The Workload API's connection limits, applied to the dedicated socket. */
  readonly limits: WorkloadApiLimits
  /** How callers and the PIDs delegates name are attested (the Workload API's settings: the Docker socket). */
  readonly attestor?: AttestorOptions
  readonly store: RegistrationStore
  readonly ca: AgentCa
  /** The Workload API's X509-SVID cache. */
  readonly cache: X509SvidCache
  readonly logger: Logger
}

export class DelegatedIdentityApi {
  readonly subscriptions: DelegatedSubscriptions
  /** The dedicated socket, when there is one. */
  readonly socket?: DedicatedSocket
  readonly #adminConnections: ConnectionIdentities

  private constructor (subscriptions: DelegatedSubscriptions, adminConnections: ConnectionIdentities, socket: DedicatedSocket | undefined) {
    this.subscriptions = subscriptions
    this.#adminConnections = adminConnections
    if (socket !== undefined) this.socket = socket
  }

  /**
   * Adds the service to the admin socket's gRPC server (each of whose connections must then be passed to
   * trackAdminConnection before gRPC gets it) and listens on the dedicated socket, if there is one.
   */
  static async start (options: DelegatedIdentityOptions, adminServer: Server): Promise<DelegatedIdentityApi> {
    const { store, ca, cache } = options
    const logger = options.logger.child({ component: 'delegated-identity' })
    const attestor = new WorkloadAttestor({ ...options.attestor, logger })
    const authorization = new DelegateAuthorization({ authorizedDelegates: options.authorizedDelegates, store, attestor, logger })
    const subscriptions = new DelegatedSubscriptions({ store, ca, cache, authorization, logger })
    const shared = { authorization, attestor, subscriptions, store, ca, logger }
    const adminConnections = new ConnectionIdentities('admin-connection')
    adminServer.addService(delegatedIdentityService().service, delegatedIdentityHandlers({ ...shared, socket: { connections: adminConnections } }))
    let socket: DedicatedSocket | undefined
    try {
      if (options.socketPath !== undefined) {
        socket = await listenDedicatedSocket({
          path: options.socketPath,
          ...(options.socketGroup === undefined ? {} : { group: options.socketGroup }),
          limits: options.limits,
          logger,
          handlers: connections => delegatedIdentityHandlers({ ...shared, socket: connections })
        })
      }
    } catch (err) {
      subscriptions.close()
      throw err
    }
    if (options.authorizedDelegates.length === 0) logger.info('delegated identity API: no authorizedDelegates configured, every call will be refused')
    else logger.info({ authorizedDelegates: options.authorizedDelegates }, 'delegated identity API: serving the authorized delegates')
    return new DelegatedIdentityApi(subscriptions, adminConnections, socket)
  }

  /** Names a connection of the admin socket by the kernel's word, so its Delegated Identity calls can be attested. */
  trackAdminConnection (connection: Socket): void {
    this.#adminConnections.track(connection)
  }

  /** Ends every stream and closes the dedicated socket (the admin socket is the agent's to close, afterwards). */
  async stop (): Promise<void> {
    this.subscriptions.close()
    await this.socket?.stop()
  }
}
