/**
 * What the Docker Engine's answers mean for node mode, without any I/O: the app network (its bridge interface and
 * IPv4 subnets) from `GET /networks/<name>`, and an app from a container's `GET /containers/<id>/json` — its name,
 * its network namespace (`/proc/<State.Pid>/ns/net`) and its settings from `chaperone.*` labels.
 *
 * A label that does not parse is reported (ERR_NODE_DOCKER_LABEL_INVALID, naming the container and the label) and
 * its fallback always leaves the app more protected, never less: bad port labels are ignored — the node's
 * httpPorts serve the app (an HTTP rule then decides nothing on a port it calls TCP, so it denies), no port is
 * excluded from the redirect — and a bad `chaperone.spiffe-id` leaves the container unserved, since serving it with
 * another identity than the one its operator named could grant it what the policy grants that other identity.
 */
import { parseSpiffeId } from '../spiffe/id'
import type { AppConfig } from './config'
import { DockerError } from './docker-errors'
import { parseIpv4Network } from './ipv4-network'
import type { Ipv4Network } from './ipv4-network'

/** The labels a container may carry to tune how it is served. */
export const APP_LABELS = {
  httpPorts: 'chaperone.http-ports',
  spiffeId: 'chaperone.spiffe-id',
  excludeInboundPorts: 'chaperone.exclude-inbound-ports',
  excludeOutboundPorts: 'chaperone.exclude-outbound-ports'
} as const

/** Where Docker names a bridge network's interface when it is not `br-<first 12 of the network ID>`. */
const BRIDGE_NAME_OPTION = 'com.docker.network.bridge.name'

export interface DockerNetwork {
  readonly id: string
  readonly name: string
  readonly driver: string
  /** The bridge interface the guard is installed on; absent unless the driver is `bridge`. */
  readonly bridge?: string
  readonly subnets: readonly Ipv4Network[]
}

/** A container as discovery sees it: the app to serve (absent: not served) and its labels' problems. */
export interface ContainerApp {
  readonly app?: AppConfig
  readonly problems: readonly DockerError[]
}

type Json = Record<string, unknown>

const isObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value)

function malformed (what: string): DockerError {
  return new DockerError('ERR_NODE_DOCKER_RESPONSE', `the Docker Engine's ${what} is not what its API documents: is this a Docker Engine?`)
}

/** The network of `GET /networks/<name>`; throws ERR_NODE_DOCKER_RESPONSE for another shape. */
export function dockerNetworkOf (inspect: unknown): DockerNetwork {
  if (!isObject(inspect) || typeof inspect.Id !== 'string' || inspect.Id.length < 12 || typeof inspect.Name !== 'string') throw malformed('network inspection')
  const driver = typeof inspect.Driver === 'string' ? inspect.Driver : ''
  const options = isObject(inspect.Options) ? inspect.Options : {}
  const named = options[BRIDGE_NAME_OPTION]
  const ipam = isObject(inspect.IPAM) && Array.isArray(inspect.IPAM.Config) ? inspect.IPAM.Config : []
  const subnets = ipam.flatMap(config => {
    const subnet = isObject(config) ? config.Subnet : undefined
    if (typeof subnet !== 'string' || subnet.includes(':')) return [] // IPv6: not tunnelled yet
    const network = parseIpv4Network(subnet)
    if (typeof network === 'string') throw malformed(`subnet of network ${inspect.Name as string} (${network})`)
    return [network]
  })
  return Object.freeze({
    id: inspect.Id,
    name: inspect.Name,
    driver,
    ...(driver === 'bridge' ? { bridge: typeof named === 'string' && named !== '' ? named : `br-${inspect.Id.slice(0, 12)}` } : {}),
    subnets: Object.freeze(subnets)
  })
}

/** The container IDs of `GET /containers/json`; throws ERR_NODE_DOCKER_RESPONSE for another shape. */
export function containerIdsOf (list: unknown): string[] {
  if (!Array.isArray(list)) throw malformed('container list')
  return list.map(container => {
    if (!isObject(container) || typeof container.Id !== 'string' || !/^[0-9a-f]{12,64}$/.test(container.Id)) throw malformed('container list')
    return container.Id
  })
}

/** `"8080, 8081"` → the ports, or why not. An empty label is an empty list. */
export function parsePortsLabel (text: string): number[] | string {
  const parts = text.split(',').map(part => part.trim())
  if (parts.length === 1 && parts[0] === '') return []
  const ports = parts.map(part => /^[0-9]{1,5}$/.test(part) ? Number(part) : NaN)
  if (ports.some(port => !(port >= 1 && port <= 65535))) return 'is not a comma-separated list of ports 1–65535 (e.g. "8080,8081")'
  return [...new Set(ports)]
}

interface LabelReader {
  /** The ports of a port label; undefined when absent or bad (reported). */
  ports: (label: string) => number[] | undefined
  /** The label's text, if present. */
  text: (label: string) => string | undefined
  problem: (label: string, why: string) => void
  readonly problems: DockerError[]
}

function labelReader (container: string, labels: Json): LabelReader {
  const problems: DockerError[] = []
  const text = (label: string): string | undefined => typeof labels[label] === 'string' ? labels[label] : undefined
  const problem = (label: string, why: string): void => {
    problems.push(new DockerError('ERR_NODE_DOCKER_LABEL_INVALID', `container ${container}: label ${label}=${JSON.stringify(text(label))} ${why}`))
  }
  return {
    problems,
    text,
    problem,
    ports: label => {
      const value = text(label)
      if (value === undefined) return undefined
      const ports = parsePortsLabel(value)
      if (typeof ports !== 'string') return ports
      problem(label, `${ports}: ignored, ${label === APP_LABELS.httpPorts ? 'the node\'s httpPorts serve the app' : 'no port is excluded'}`)
      return undefined
    }
  }
}

/**
 * The app of `GET /containers/<id>/json`, if the container runs and is attached to `network`; with the node's
 * `httpPorts` unless its label says otherwise. Throws ERR_NODE_DOCKER_RESPONSE for another shape.
 */
export function dockerAppOf (inspect: unknown, network: DockerNetwork, httpPorts: ReadonlySet<number>): ContainerApp {
  if (!isObject(inspect) || typeof inspect.Name !== 'string' || !isObject(inspect.State)) throw malformed('container inspection')
  const name = inspect.Name.replace(/^\//, '')
  const { Running: running, Pid: pid } = inspect.State
  const networks = isObject(inspect.NetworkSettings) && isObject(inspect.NetworkSettings.Networks) ? inspect.NetworkSettings.Networks : {}
  const attached = Object.entries(networks).some(([key, value]) => key === network.name || (isObject(value) && value.NetworkID === network.id))
  if (running !== true || typeof pid !== 'number' || !Number.isInteger(pid) || pid < 1 || !attached) return { problems: [] }
  const labels = labelReader(name, isObject(inspect.Config) && isObject(inspect.Config.Labels) ? inspect.Config.Labels : {})
  const ownHttpPorts = labels.ports(APP_LABELS.httpPorts)
  const excludeInboundPorts = labels.ports(APP_LABELS.excludeInboundPorts) ?? []
  const excludeOutboundPorts = labels.ports(APP_LABELS.excludeOutboundPorts) ?? []
  const spiffeIdText = labels.text(APP_LABELS.spiffeId)
  let spiffeId: string | undefined
  if (spiffeIdText !== undefined) {
    try {
      spiffeId = parseSpiffeId(spiffeIdText.trim()).toString()
    } catch (err) {
      labels.problem(APP_LABELS.spiffeId, `is not a SPIFFE ID (${(err as Error).message}): the container is not served until it is fixed`)
      return { problems: labels.problems }
    }
  }
  const app: AppConfig = Object.freeze({
    name,
    netns: `/proc/${pid}/ns/net`,
    pid,
    ...(spiffeId === undefined ? {} : { spiffeId }),
    httpPorts: new Set(ownHttpPorts ?? httpPorts),
    excludeInboundPorts,
    excludeOutboundPorts
  })
  return { app, problems: labels.problems }
}
