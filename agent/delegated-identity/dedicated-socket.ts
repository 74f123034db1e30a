/**
 * The Delegated Identity API's own socket (`delegatedIdentitySocket`): this API alone — no admin calls, no Workload
 * API, no health — so that a node proxy can be given it without the admin socket's powers. Its connections are
 * admitted as the Workload API's are (kernel credentials, limits per uid, descriptors in reserve, a deadline for the
 * first call, idle ones closed: agent/workload/admission.ts), counted on their own. Mode 0666 like the Workload
 * API's, since every call is attested and authorized by the kernel's word; or 0660 given to a group, which keeps
 * everyone else from even connecting.
 */
import { ServerCredentials } from '@grpc/grpc-js'
import type { UntypedServiceImplementation } from '@grpc/grpc-js'
import type { Logger } from 'pino'
import { stopGrpcOnSocket } from '../grpc-shutdown'
import { listenUnixSocket } from '../unix-socket'
import { WorkloadAdmission } from '../workload/admission'
import type { WorkloadApiLimits } from '../workload/admission'
import { ConnectionRegistry } from '../workload/connections'
import { admittedConnectionsServer } from '../workload/server'
import type { DelegateConnections } from './delegate-authorization'
import { delegatedIdentityService } from '../../spiffe/delegated-identity-proto'

export interface DedicatedSocketOptions {
  readonly path: string
  /** Group (name or gid) given the socket, then 0660; without one it is 0666. */
  readonly group?: string
  /** The Workload API's connection limits. */
  readonly limits: WorkloadApiLimits
  readonly logger: Logger
  /** The API's handlers for this socket's callers. */
  readonly handlers: (socket: DelegateConnections) => UntypedServiceImplementation
}

/** The socket, listening; `stop` ends the calls in progress and closes it. */
export interface DedicatedSocket {
  readonly path: string
  readonly stop: () => Promise<void>
}

export async function listenDedicatedSocket (options: DedicatedSocketOptions): Promise<DedicatedSocket> {
  const admission = new WorkloadAdmission(options.limits, options.logger, undefined, 'delegated identity API')
  const connections = new ConnectionRegistry(admission)
  const grpc = admittedConnectionsServer(connections, options.limits)
  grpc.addService(delegatedIdentityService().service, options.handlers({ connections, admission }))
  const injector = grpc.createConnectionInjector(ServerCredentials.createInsecure())
  const mode = options.group === undefined ? 0o666 : 0o660
  const socket = await listenUnixSocket({ path: options.path, mode, ...(options.group === undefined ? {} : { group: options.group }) }, connection => {
    if (connections.accept(connection)) injector.injectConnection(connection)
  })
  options.logger.info({ socket: options.path, mode: mode.toString(8), ...(options.group === undefined ? {} : { group: options.group }) }, 'delegated identity API listening on its own socket')
  return { path: options.path, stop: async () => { await stopGrpcOnSocket(grpc, socket) } }
}
