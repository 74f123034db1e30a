/**
 * One look at what Docker runs on the app network: the network (`GET /networks/<name>`), the running containers
 * attached to it (`GET /containers/json`, filtered by network, status and the optional label), and each one's
 * inspection for its PID and labels. Each app is pinned to the namespace its PID was in right after Docker named
 * the PID, so a PID reused after the container exits can never lead the node proxy into another namespace.
 * All or nothing: a failed request fails the listing, and the caller keeps what it found before.
 */
import type { ChaperoneError } from '../spiffe/errors'
import type { AppConfig } from './config'
import { containerIdsOf, dockerAppOf, dockerNetworkOf } from './docker-apps'
import type { DockerNetwork } from './docker-apps'
import { withFilters } from './docker-engine'
import type { DockerEngine } from './docker-engine'
import { DockerError } from './docker-errors'
import { NetnsError } from './errors'
import { netnsIdentity } from './netns'

export interface DockerSettings {
  /** The Engine's Unix socket. */
  readonly socket: string
  /** The app network's name (or ID). */
  readonly network: string
  /** Only containers with this label (`key` or `key=value`, as `docker ps --filter label=…`). */
  readonly label?: string
}

export interface DockerListing {
  /** Absent when the network does not exist: no app then. */
  readonly network?: DockerNetwork
  /** The apps, by name. */
  readonly apps: readonly AppConfig[]
  /** What the operator should fix: a missing or unguardable network, bad labels, a namespace that cannot be read. */
  readonly problems: readonly ChaperoneError[]
}

const notFound = (err: unknown): boolean => err instanceof DockerError && err.status === 404

async function networkOf (engine: DockerEngine, name: string): Promise<DockerNetwork | DockerError> {
  try {
    return dockerNetworkOf(await engine.getJson(`/networks/${encodeURIComponent(name)}`))
  } catch (err) {
    if (!notFound(err)) throw err
    return new DockerError('ERR_NODE_DOCKER_NETWORK_NOT_FOUND', `there is no Docker network "${name}": create it (docker network create ${name}) or set docker.network; no container is served through Docker until it exists`)
  }
}

/** Pins the app to the namespace its PID is in now; undefined if the process is gone already. */
function pinned (app: AppConfig, problems: ChaperoneError[]): AppConfig | undefined {
  try {
    return Object.freeze({ ...app, netnsIdentity: netnsIdentity(app.netns) })
  } catch (err) {
    if (!(err instanceof NetnsError) || err.errno !== 'ENOENT') problems.push(err as ChaperoneError)
    return undefined
  }
}

export async function listDockerApps (engine: DockerEngine, settings: DockerSettings, httpPorts: ReadonlySet<number>): Promise<DockerListing> {
  const network = await networkOf(engine, settings.network)
  if (network instanceof DockerError) return { apps: [], problems: [network] }
  const problems: ChaperoneError[] = []
  if (network.bridge === undefined) {
    problems.push(new DockerError('ERR_NODE_DOCKER_NETWORK_DRIVER', `Docker network ${network.name} has driver "${network.driver}", not bridge: its containers are served, but no guard can stop plaintext between those not adopted yet (the guard needs the bridge); use a bridge network`))
  }
  const filters = { network: [network.id], status: ['running'], ...(settings.label === undefined ? {} : { label: [settings.label] }) }
  const ids = containerIdsOf(await engine.getJson(withFilters('/containers/json', filters)))
  const inspections = await Promise.all(ids.map(async id => await engine.getJson(`/containers/${id}/json`).catch((err: unknown) => {
    if (notFound(err)) return undefined // removed since the list
    throw err
  })))
  const apps: AppConfig[] = []
  for (const inspection of inspections) {
    if (inspection === undefined) continue
    const found = dockerAppOf(inspection, network, httpPorts)
    problems.push(...found.problems)
    const app = found.app === undefined ? undefined : pinned(found.app, problems)
    if (app !== undefined) apps.push(app)
  }
  return { network, apps: apps.sort((a, b) => a.name.localeCompare(b.name)), problems }
}
