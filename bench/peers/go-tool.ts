/**
 * Peers and tools written in Go, built into a cache folder outside the repository, once: programs of others
 * (Compose v2, SPIRE, ghostunnel) from the Go module proxy at a pinned version, and our own small peers from their
 * sources under test/ (keyed by a hash of the sources). A throwaway module requires the command as a tool
 * (`go get -tool`): that works for modules the proxy lists no versions of (SPIRE's), and, with the module's own
 * `exclude` blocks copied, for modules whose go.mod makes `go install module@version` refuse (Compose's), while
 * resolving exactly the versions the module pins. The interop and deployment suites use it, and so does the proxy
 * benchmark (ghostunnel): it lives in bench/ because the build compiles bench/, not test/.
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'

const execFileText = promisify(execFile)

/** Where the built programs are kept, by name and version: CHAPERONE_INTEROP_CACHE, or ~/.cache/chaperone-interop. */
export const GO_TOOL_CACHE = process.env.CHAPERONE_INTEROP_CACHE ?? join(homedir(), '.cache', 'chaperone-interop')

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

/** Runs `go` and returns its stdout; rejects with the command line and the end of its output. */
async function go (args: readonly string[], options: { cwd: string, cgo: boolean, timeoutMs: number }): Promise<string> {
  const env = { ...process.env, CGO_ENABLED: options.cgo ? '1' : '0', GOFLAGS: '-buildvcs=false' }
  try {
    const { stdout } = await execFileText('go', args, { cwd: options.cwd, env, timeout: options.timeoutMs, maxBuffer: 2 ** 28, encoding: 'utf8' })
    return stdout
  } catch (err) {
    const { stdout, stderr, killed } = err as { stdout?: string, stderr?: string, killed?: boolean }
    const tail = `${stdout ?? ''}\n${stderr ?? ''}`.trim().split('\n').slice(-25).join('\n')
    throw new Error(`go ${args.join(' ')} ${killed === true ? 'timed out' : 'failed'}:\n${tail === '' ? (err as Error).message : tail}`)
  }
}

/** The binary's path, building it first when it is not there yet. */
export async function buildGoTool (tool: GoTool): Promise<string> {
  return await builtOnce(tool.output, async partial => { await buildTool(tool, partial) })
}

async function buildTool (tool: GoTool, partial: string): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'chaperone-go-tool-'))
  try {
    const inWork = async (...args: string[]): Promise<string> => await go(args, { cwd: work, cgo: tool.cgo === true, timeoutMs: 1_800_000 })
    await inWork('mod', 'init', 'chaperone.test/go-tool')
    const downloaded = JSON.parse(await inWork('mod', 'download', '-json', `${tool.module}@${tool.version}`)) as { GoMod: string, Dir: string }
    const excludes = readFileSync(downloaded.GoMod, 'utf8').match(/^exclude \([\s\S]*?^\)$|^exclude [^(].*$/gm) ?? []
    if (excludes.length > 0) appendFileSync(join(work, 'go.mod'), `\n${excludes.join('\n')}\n`)
    // The module's own go.sum: its dependencies are checked against the hashes it was released with, which also
    // covers versions the checksum database does not answer for (ghostunnel's go-landlock pseudo-version).
    const sums = join(downloaded.Dir, 'go.sum')
    if (existsSync(sums)) writeFileSync(join(work, 'go.sum'), readFileSync(sums))
    await inWork('get', '-tool', `${tool.command}@${tool.version}`)
    await inWork('build', '-trimpath', ...tool.ldflags === undefined ? [] : ['-ldflags', tool.ldflags], '-o', partial, tool.command)
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
  return await builtOnce(output, async partial => {
    await go(['build', '-trimpath', '-o', partial, '.'], { cwd: source, cgo: false, timeoutMs: 900_000 })
  })
}

/**
 * `output`, built by `build` into a partial file first when it is missing. One build per output at a time, across
 * processes (tap runs the interop files in parallel, several need spire-agent): a lock file beside the output, made
 * with O_EXCL and naming its holder, so the others wait for its binary; a lock whose holder died is taken over.
 */
async function builtOnce (output: string, build: (partial: string) => Promise<void>): Promise<string> {
  mkdirSync(dirname(output), { recursive: true })
  const lock = `${output}.lock`
  while (!existsSync(output)) {
    try {
      writeFileSync(lock, `${process.pid}\n`, { flag: 'wx' })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      if (!holderAlive(lock)) rmSync(lock, { force: true })
      else await new Promise(resolve => setTimeout(resolve, 1000))
      continue
    }
    try {
      if (!existsSync(output)) {
        await build(`${output}.partial`)
        renameSync(`${output}.partial`, output)
      }
    } finally {
      rmSync(lock, { force: true })
    }
  }
  return output
}

/** Whether the process a lock file names still runs; a lock still without a pid is held for its first seconds. */
function holderAlive (lock: string): boolean {
  let pid: number
  try {
    pid = Number.parseInt(readFileSync(lock, 'utf8'), 10)
    if (Number.isNaN(pid)) return Date.now() - statSync(lock).mtimeMs < 10_000
  } catch {
    return true
  }
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
