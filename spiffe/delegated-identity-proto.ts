/**
 * SPIRE's Delegated Identity API (spire.api.agent.delegatedidentity.v1.DelegatedIdentity), loaded from the
 * delegated-identity.proto shipped next to this folder's sources: the client here and the agent's server share it,
 * so both speak exactly SPIRE's messages.
 */
import type { ServiceClientConstructor, ServiceDefinition } from '@grpc/grpc-js'
import { loadProtoService, spiffeProtoPath } from './grpc-proto'

export const DELEGATED_IDENTITY_SERVICE = 'spire.api.agent.delegatedidentity.v1.DelegatedIdentity'

/** Where delegated-identity.proto is (see spiffeProtoPath). */
export function delegatedIdentityProtoPath (): string {
  return spiffeProtoPath('delegated-identity.proto')
}

/** The DelegatedIdentity service: `new` it for a client, or pass `.service` to a grpc-js server's addService. */
export function delegatedIdentityService (): ServiceClientConstructor {
  return loadProtoService(delegatedIdentityProtoPath(), DELEGATED_IDENTITY_SERVICE)
}

/** The method definitions (path, serializers) by RPC name. */
export function delegatedIdentityMethods (): ServiceDefinition {
  return delegatedIdentityService().service
}
