/**
 * The real SPIFFE programs the interop suite runs against Chaperone, built from the Go module proxy at pinned
 * versions into ~/.cache/chaperone-interop (CHAPERONE_INTEROP_CACHE), keyed by version: a fresh machine builds them
 * once, a warm one reuses them. Not a test itself.
 */
import type { Test } from 'tap'
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { findTool } from '../helpers/netns-tools'
import { GO_TOOL_CACHE, buildGoProgram, buildGoTool } from '../../bench/peers/go-tool'
// ghostunnel's version and build are shared with the proxy benchmark (bench/ is built, test/ is not).
export { GHOSTUNNEL_VERSION, ghostunnelBinary as ghostunnel } from '../../bench/peers/ghostunnel'

export const CACHE_DIR = GO_TOOL_CACHE
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

/** spire-server at SPIRE_VERSION (cgo: its SQLite datastore needs it). */
export async function spireServer (): Promise<string> {
  return await buildGoTool({
    module: 'github.com/spiffe/spire',
    command: 'github.com/spiffe/spire/cmd/spire-server',
    version: SPIRE_VERSION,
    output: join(CACHE_DIR, `spire-${SPIRE_VERSION}`, 'spire-server'),
    cgo: true
  })
}

/** Our go-spiffe v2.9.0 Workload API client (test/interop/go-spiffe-probe). */
export async function spiffeProbe (): Promise<string> {
  return await buildGoProgram(join(__dirname, 'go-spiffe-probe'), join(CACHE_DIR, 'bin'), 'spiffe-probe')
}

/** Our go-spiffe v2.9.0 spiffetls server and client (test/interop/go-spiffe-tls). */
export async function spiffeTlsPeer (): Promise<string> {
  return await buildGoProgram(join(__dirname, 'go-spiffe-tls'), join(CACHE_DIR, 'bin'), 'spiffe-tls')
}

/** A copy of `binary` that any uid may run (the cache is under root's home), in a folder removed at the test's end. */
export function placeForAnyUid (t: Test, binary: string, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-peer-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  chmodSync(dir, 0o755)
  const placed = join(dir, name)
  copyFileSync(binary, placed)
  chmodSync(placed, 0o755)
  return placed
}
