/**
 * Server reflection for the Workload API. The SPIFFE proto has no package (its service is plain
 * `SpiffeWorkloadAPI`), and @grpc/reflection 1.0 indexes package-less symbols with a leading dot
 * (`.SpiffeWorkloadAPI`), so clients such as grpcurl could not find them. We index each such symbol under its
 * standard name too. This reaches into the library's index (private in its types): the test of reflection
 * (test/agent/workload/workload-api.test.ts) fails if a library update changes that shape.
 */
import type { Server } from '@grpc/grpc-js'
import { loadSync } from '@grpc/proto-loader'
import { ReflectionService } from '@grpc/reflection'

interface ReflectionIndex {
  symbols: Record<string, unknown>
  services: Record<string, unknown>
}

function withStandardNames (index: ReflectionIndex): void {
  for (const table of [index.symbols, index.services]) {
    for (const name of Object.keys(table)) {
      if (name.startsWith('.')) {
        table[name.slice(1)] = table[name]
        delete table[name]
      }
    }
  }
}

/** Serves reflection (v1 and v1alpha) for the protos in `protoFile`, package-less names fixed. */
export function addReflection (server: Server, protoFile: string): void {
  const reflection = new ReflectionService(loadSync(protoFile))
  const { v1, v1Alpha } = reflection as unknown as { v1: ReflectionIndex, v1Alpha: ReflectionIndex }
  for (const implementation of [v1, v1Alpha]) withStandardNames(implementation)
  reflection.addToServer(server)
}
