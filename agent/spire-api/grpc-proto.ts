/** The SPIRE server API's service definitions, from the .proto files shipped with the package (proto/). */
import type { ServiceClientConstructor } from '@grpc/grpc-js'
import { packageFile } from '../../config/package-files'
import { loadProtoService } from '../../spiffe/grpc-proto'

export const EntryService = (): ServiceClientConstructor =>
  loadProtoService(packageFile('agent/spire-api/proto/entry.proto'), 'spire.api.server.entry.v1.Entry')

export const BundleService = (): ServiceClientConstructor =>
  loadProtoService(packageFile('agent/spire-api/proto/bundle.proto'), 'spire.api.server.bundle.v1.Bundle')

export const AgentService = (): ServiceClientConstructor =>
  loadProtoService(packageFile('agent/spire-api/proto/agent.proto'), 'spire.api.server.agent.v1.Agent')

export const TrustDomainService = (): ServiceClientConstructor =>
  loadProtoService(packageFile('agent/spire-api/proto/trustdomain.proto'), 'spire.api.server.trustdomain.v1.TrustDomain')

/** The Agent service as a device CALLS it on an upstream SPIRE server: only AttestAgent (proto/agent-attest.proto). */
export const AgentAttestationService = (): ServiceClientConstructor =>
  loadProtoService(packageFile('agent/spire-api/proto/agent-attest.proto'), 'spire.api.server.agent.v1.Agent')

/** The SVID service as a device CALLS it on an upstream SPIRE server: BatchNewX509SVID, NewDownstreamX509CA. */
export const SvidClientService = (): ServiceClientConstructor =>
  loadProtoService(packageFile('agent/spire-api/proto/svid-client.proto'), 'spire.api.server.svid.v1.SVID')
