/**
 * Loading gRPC services from .proto files with the options all of Chaperone's gRPC shares, once per service.
 * keepCase: field names as in the .proto (the standards' snake_case); longs as numbers (our int64s are seconds and
 * revisions); defaults: absent fields read as proto3 means ('' / 0 / empty); oneofs: Struct values say their kind.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { loadPackageDefinition } from '@grpc/grpc-js'
import type { GrpcObject, ServiceClientConstructor } from '@grpc/grpc-js'
import { loadSync } from '@grpc/proto-loader'

/** Where a .proto of this folder is: beside this file in the source tree; two levels up from dist/spiffe/ in the build. */
export function spiffeProtoPath (fileName: string): string {
  const candidates = [join(__dirname, fileName), join(__dirname, '..', '..', 'spiffe', fileName)]
  const found = candidates.find(path => existsSync(path))
  if (found === undefined) throw new Error(`cannot find ${fileName} (looked at ${candidates.join(', ')})`)
  return found
}

const loaded = new Map<string, ServiceClientConstructor>()

/** The service constructor at `servicePath` (e.g. `chaperone.admin.v1.Admin`) in the .proto at `protoPath`. */
export function loadProtoService (protoPath: string, servicePath: string): ServiceClientConstructor {
  const key = `${protoPath}#${servicePath}`
  const cached = loaded.get(key)
  if (cached !== undefined) return cached
  const definition = loadSync(protoPath, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true })
  let node: unknown = loadPackageDefinition(definition)
  for (const part of servicePath.split('.')) node = (node as GrpcObject)[part]
  if (typeof node !== 'function') throw new Error(`${servicePath} is not a service of ${protoPath}`)
  loaded.set(key, node as ServiceClientConstructor)
  return node as ServiceClientConstructor
}
