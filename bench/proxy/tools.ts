/**
 * The proxy benchmark's tools: found on PATH, or installed with apt-get when some are missing (as root, the way
 * CI and a fresh machine run it). Where they cannot be installed, the benchmark is skipped with the command that
 * would install them. ghostunnel is built with Go instead, once; without Go, only its path is skipped.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { promisify } from 'node:util'
import { GHOSTUNNEL, GHOSTUNNEL_VERSION, ghostunnelBinary } from '../peers/ghostunnel'

const run = promisify(execFile)

/** Each tool, how to ask it something harmless, and the Debian package that has it. */
export const TOOLS: ReadonlyArray<readonly [string, string[], string]> = [
  ['wrk', ['--version'], 'wrk'], ['haproxy', ['-v'], 'haproxy'], ['nginx', ['-v'], 'nginx-light'], ['ss', ['-V'], 'iproute2']
]

/** The commands of `tools` that do not run here. */
async function absentTools (tools: ReadonlyArray<readonly [string, readonly string[], ...unknown[]]> = TOOLS): Promise<string[]> {
  const missing: string[] = []
  for (const [command, args] of tools) {
    try {
      await run(command, args)
    } catch (err) {
      // wrk has no --version and exits 1 after printing its usage; only "not found" means missing.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') missing.push(command)
    }
  }
  return missing
}

/** The Debian packages that hold the missing commands. */
export function packagesFor (missing: readonly string[]): string[] {
  return TOOLS.filter(([tool]) => missing.includes(tool)).map(([, , pkg]) => pkg)
}

/** Why apt-get cannot install packages for this process, or undefined when it can. */
export function cannotInstall (uid: number | undefined): string | undefined {
  return uid === 0 ? undefined : 'installing them needs root'
}

/** Installs what is missing; undefined when every tool is there, else why the benchmark is skipped. */
export async function ensureTools (progress: (text: string) => void): Promise<string | undefined> {
  const absent = await absentTools()
  if (absent.length === 0) return undefined
  const packages = packagesFor(absent)
  const command = `apt-get install -y ${packages.join(' ')}`
  const why = cannotInstall(process.getuid?.())
  if (why !== undefined) return `proxy benchmark skipped: ${absent.join(', ')} not found, and ${why} (${command})`
  progress(`${absent.join(', ')} not found: installing ${packages.join(', ')} with apt-get`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  try {
    await run('apt-get', ['update', '-qq'], { env })
    await run('apt-get', ['install', '-y', '-qq', ...packages], { env })
  } catch (err) {
    return `proxy benchmark skipped: ${command} failed: ${String((err as { stderr?: string }).stderr ?? err).trim().split('\n').slice(-1)[0]}`
  }
  const still = await absentTools()
  return still.length === 0 ? undefined : `proxy benchmark skipped: ${still.join(', ')} still not found after ${command}`
}

/** ghostunnel's binary, or why its path is skipped (the rest of the benchmark runs either way). */
export type GhostunnelBinary = { readonly binary: string } | { readonly skipped: string }

/** What ghostunnel's path needs each command for. */
const GHOSTUNNEL_NEEDS: Record<string, string> = {
  go: `Go builds ghostunnel ${GHOSTUNNEL_VERSION} from the Go module proxy, with cgo, into ${GHOSTUNNEL.output}`,
  taskset: 'taskset, from util-linux, starts each ghostunnel hop on one CPU'
}

export const ghostunnelSkipped = (missing: readonly string[]): string =>
  `ghostunnel path skipped: ${missing.join(', ')} not found (${missing.map(command => GHOSTUNNEL_NEEDS[command]).join('; ')})`

/** The ghostunnel binary from the Go tools' cache, built there first when missing (a few minutes, once). */
export async function ensureGhostunnel (progress: (text: string) => void): Promise<GhostunnelBinary> {
  const built = existsSync(GHOSTUNNEL.output)
  const needed: Array<[string, string[]]> = [['taskset', ['--version']]]
  if (!built) needed.push(['go', ['version']])
  const missing = await absentTools(needed)
  if (missing.length > 0) return { skipped: ghostunnelSkipped(missing) }
  if (!built) progress(`building ghostunnel ${GHOSTUNNEL_VERSION} with Go into ${GHOSTUNNEL.output} (once, a few minutes)`)
  try {
    return { binary: await ghostunnelBinary() }
  } catch (err) {
    const reason = (err instanceof Error ? err.message : String(err)).trim().split('\n').slice(-1)[0]
    return { skipped: `ghostunnel path skipped: building ghostunnel ${GHOSTUNNEL_VERSION} failed: ${reason}` }
  }
}
