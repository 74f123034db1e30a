/**
 * The real SPIFFE programs the interop suite runs against Chaperone, built from the Go module proxy at pinned
 * versions into ~/.cache/chaperone-interop (CHAPERONE_INTEROP_CACHE), keyed by version: a fresh machine builds them
 * once, a warm one reuses them. Not a test itself.
 */
import { homedir } from 'node:os'
import { join } from 'node:path'
import { findTool } from '../helpers/netns-tools'
import { buildGoProgram, buildGoTool } from '../helpers/go-tool'

export const CACHE_DIR = process.env.CHAPERONE_INTEROP_CACHE ?? join(homedir(), '.cache', 'chaperone-interop')
export const SPIRE_VERSION = 'v1.13.3'

/**
 * Why the suite cannot run here, or false: not root, or no Go. In CI (env CI set) a missing toolchain is a failure,
 * not a skip, so the suite cannot pass by not running.
 */
export function interopSkip (): string | false {
  if (process.getuid?.() !== 0) return 'not root: the interop suite runs peers under other uids (CI runs it as root)'
  if (findTool('go') !== undefined) return false
  const reason = 'Go is not installed: the peers (SPIRE, go-spiffe programs, ghostunnel) are built with it from the Go module proxy'
  if (process.env.CI !== undefined) throw new Error(`${reason}; in CI that is a failure`)
  return reason
}

/** spire-agent at SPIRE_VERSION (its `api` and `healthcheck` commands are Workload API clients). */
export async function spireAgent (): Promise<string> {
  return await buildGoTool({
    module: 'github.com/spiffe/spire',
    command: 'github.com/spiffe/spire/cmd/spire-agent',
    version: SPIRE_VERSION,
    output: join(CACHE_DIR, `spire-${SPIRE_VERSION}`, 'spire-agent'),
    cgo: true
  })
}

/** Our go-spiffe v2.9.0 Workload API client (test/interop/go-spiffe-probe). */
export async function spiffeProbe (): Promise<string> {
  return await buildGoProgram(join(__dirname, 'go-spiffe-probe'), join(CACHE_DIR, 'bin'), 'spiffe-probe')
}
