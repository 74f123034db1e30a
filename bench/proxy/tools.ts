/**
 * The proxy benchmark's tools: found on PATH, or installed with apt-get when some are missing (as root, the way
 * CI and a fresh machine run it). Where they cannot be installed, the benchmark is skipped with the command that
 * would install them.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** Each tool, how to ask it something harmless, and the Debian package that has it. */
export const TOOLS: ReadonlyArray<readonly [string, string[], string]> = [
  ['wrk', ['--version'], 'wrk'], ['haproxy', ['-v'], 'haproxy'], ['nginx', ['-v'], 'nginx-light'], ['ss', ['-V'], 'iproute2']
]

/** The tools that do not run here. */
async function absentTools (): Promise<string[]> {
  const missing: string[] = []
  for (const [command, args] of TOOLS) {
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
