/**
 * The Workload API's gRPC service definition, loaded from the workload.proto shipped next to this folder's sources.
 * Shared by the client here and by the agent's server, so both speak exactly the standard's messages.
 */
import type { ServiceClientConstructor, ServiceDefinition } from '@grpc/grpc-js'
import { loadProtoService, spiffeProtoPath } from './grpc-proto'

/** gRPC metadata every request must carry (SPIFFE_Workload_Endpoint.md §4), so a browser or SSRF can't reach the API. */
export const WORKLOAD_API_HEADER = 'workload.spiffe.io'

/** Where workload.proto is (see spiffeProtoPath). */
export function workloadProtoPath (): string {
  return spiffeProtoPath('workload.proto')
}

/** The SpiffeWorkloadAPI service: `new` it for a client, or pass `.service` to a grpc-js server's addService. */
export function workloadApiService (): ServiceClientConstructor {
  // No package (the standard's), so the service is at the root. google/protobuf/struct.proto comes with proto-loader.
  return loadProtoService(workloadProtoPath(), 'SpiffeWorkloadAPI')
}

/** The method definitions (path, serializers) by RPC name. */
export function workloadApiMethods (): ServiceDefinition {
  return workloadApiService().service
}
