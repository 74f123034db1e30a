/** Loads a .proto shipped with the package into grpc-js service definitions, with the options all our services share. */
import { loadPackageDefinition } from '@grpc/grpc-js'
import type { GrpcObject, ServiceClientConstructor } from '@grpc/grpc-js'
import { loadSync } from '@grpc/proto-loader'
import { packageFile } from '../../config/package-files'

/** The service constructor at `servicePath` (e.g. `chaperone.admin.v1.Admin`) in the package's `protoFile`. */
export function loadService (protoFile: string, servicePath: string): ServiceClientConstructor {
  // keepCase: field names as in the .proto; longs as numbers (our int64s are seconds and revisions); defaults filled.
  const definition = loadSync(packageFile(protoFile), { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true })
  let node: unknown = loadPackageDefinition(definition)
  for (const part of servicePath.split('.')) node = (node as GrpcObject)[part]
  if (typeof node !== 'function') throw new Error(`${servicePath} is not a service of ${protoFile}`)
  return node as ServiceClientConstructor
}

export const AdminService = (): ServiceClientConstructor => loadService('agent/admin/admin.proto', 'chaperone.admin.v1.Admin')

/** gRPC metadata key carrying our stable error code next to the status, so clients can rebuild a ChaperoneError. */
export const ERROR_CODE_METADATA = 'chaperone-error-code'
