/**
 * ghostunnel, the SPIFFE-aware TLS proxy in Go: a peer of the interop suite and the proxy benchmark's closest
 * competitor. One pinned version, built from the Go module proxy into the Go tools' cache, once, for both.
 */
import { join } from 'node:path'
import { GO_TOOL_CACHE, buildGoTool } from './go-tool'
import type { GoTool } from './go-tool'

/**
 * The newest ghostunnel that builds from the Go module proxy. It lists no versions; v1.11.0 and v1.11.2 are served
 * but need github.com/wrouesnel/go.connect-proxy-scheme, which it refuses, so v1.8.4, unmodified.
 */
export const GHOSTUNNEL_VERSION = 'v1.8.4'

/** With cgo: v1.8.4 does not compile without it (its no-PKCS#11 stub is stale). */
export const GHOSTUNNEL: GoTool = {
  module: 'github.com/ghostunnel/ghostunnel',
  command: 'github.com/ghostunnel/ghostunnel',
  version: GHOSTUNNEL_VERSION,
  output: join(GO_TOOL_CACHE, `ghostunnel-${GHOSTUNNEL_VERSION}`, 'ghostunnel'),
  ldflags: `-X main.version=${GHOSTUNNEL_VERSION}`,
  cgo: true
}

/** The ghostunnel binary's path, built first when the cache has none. */
export async function ghostunnelBinary (): Promise<string> {
  return await buildGoTool(GHOSTUNNEL)
}
