/**
 * Test peers and tools written in Go, built into a cache folder outside the repository, once: programs of others
 * (Compose v2, SPIRE, ghostunnel) from the Go module proxy at a pinned version, and our own small peers from their
 * sources under test/ (keyed by a hash of the sources). A throwaway module requires the command as a tool
 * (`go get -tool`): that works for modules the proxy lists no versions of (SPIRE's), and, with the module's own
 * `exclude` blocks copied, for modules whose go.mod makes `go install module@version` refuse (Compose's), while
 * resolving exactly the versions the module pins. Not a test itself.
 */
import { createHash } from 'node:crypto'
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { must } from './command'

export interface GoTool {
  /** The module, e.g. github.com/spiffe/spire. */
  module: string
  /** The main package, e.g. github.com/spiffe/spire/cmd/spire-agent. */
  command: string
  version: string
  /** Where the binary goes (its folder is created). */
  output: string
  ldflags?: string
  /** cgo on (SPIRE's SQLite needs it); off by default, for a static binary. */
  cgo?: boolean
}

/** The binary's path, building it first when it is not there yet. */
export async function buildGoTool (tool: GoTool): Promise<string> {
  if (existsSync(tool.output)) return tool.output
  const work = mkdtempSync(join(tmpdir(), 'chaperone-go-tool-'))
  try {
    const go = async (...args: string[]): Promise<string> =>
      await must('go', args, { cwd: work, env: { CGO_ENABLED: tool.cgo === true ? '1' : '0', GOFLAGS: '-buildvcs=false' }, timeoutMs: 1_800_000 })
    await go('mod', 'init', 'chaperone.test/go-tool')
    const downloaded = JSON.parse(await go('mod', 'download', '-json', `${tool.module}@${tool.version}`)) as { GoMod: string }
    const excludes = readFileSync(downloaded.GoMod, 'utf8').match(/^exclude \([\s\S]*?^\)$|^exclude [^(].*$/gm) ?? []
    if (excludes.length > 0) appendFileSync(join(work, 'go.mod'), `\n${excludes.join('\n')}\n`)
    await go('get', '-tool', `${tool.command}@${tool.version}`)
    mkdirSync(dirname(tool.output), { recursive: true })
    await go('build', '-trimpath', ...tool.ldflags === undefined ? [] : ['-ldflags', tool.ldflags], '-o', `${tool.output}.partial`, tool.command)
    renameSync(`${tool.output}.partial`, tool.output)
    return tool.output
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

/**
 * One of our own Go programs (a folder with its go.mod, and go.sum where it has dependencies), built static into
 * `outputDir` as `<name>-<hash of its sources>`; the binary's path.
 */
export async function buildGoProgram (source: string, outputDir: string, name: string): Promise<string> {
  const hash = createHash('sha256')
  for (const file of readdirSync(source).filter(f => /\.go$|^go\.(mod|sum)$/.test(f)).sort()) hash.update(file).update(readFileSync(join(source, file)))
  const output = join(outputDir, `${name}-${hash.digest('hex').slice(0, 16)}`)
  if (existsSync(output)) return output
  mkdirSync(outputDir, { recursive: true })
  await must('go', ['build', '-trimpath', '-o', `${output}.partial`, '.'], { cwd: source, env: { CGO_ENABLED: '0', GOFLAGS: '-buildvcs=false' }, timeoutMs: 900_000 })
  renameSync(`${output}.partial`, output)
  return output
}
