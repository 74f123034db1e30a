/**
 * The Compose implementations the deployment test runs the compose file with: CHAPERONE_COMPOSE alone when set
 * (a command, e.g. `docker compose`), else Debian's docker-compose 1.29 and Compose v2 (the Docker CLI's plugin
 * where it is installed, else built from the Go module proxy). Not a test itself.
 */
import { run } from '../../helpers/command'
import { composeV2 } from './compose-v2'

export interface Compose {
  /** The command and its first arguments, e.g. ['docker', 'compose']. */
  readonly command: readonly string[]
  /** What its `version` printed. */
  readonly version: string
}

async function probe (command: string[]): Promise<Compose | undefined> {
  const version = await run(command[0], [...command.slice(1), 'version'], { timeoutMs: 30_000 }).catch(() => undefined)
  return version?.status === 0 ? { command, version: version.stdout.split('\n')[0].trim() } : undefined
}

async function required (command: string[]): Promise<Compose> {
  const found = await probe(command)
  if (found === undefined) throw new Error(`\`${command.join(' ')} version\` failed: is it installed?`)
  return found
}

export async function composes (log: (line: string) => void): Promise<Compose[]> {
  const chosen = process.env.CHAPERONE_COMPOSE?.trim() ?? ''
  if (chosen !== '') return [await required(chosen.split(/\s+/))]
  const plugin = await probe(['docker', 'compose'])
  if (plugin === undefined) log('building Compose v2 from the Go module proxy (once, into the cache folder)')
  return [await required(['docker-compose']), plugin ?? await required([await composeV2()])]
}
