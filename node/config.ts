/**
 * The node proxy's configuration: a YAML file (node/config-schema.ts), validated and frozen, each problem named
 * with its line. Apps are given by network namespace here, or found through Docker (`docker:`), or both.
 */
import { ConfigError, readConfigFile, validateConfig } from '../config/load'
import type { ConfigProblem } from '../config/load'
import { checkServices, limitsOf, parseHostPort } from '../proxy'
import type { HostPort, ProxyLimits } from '../proxy'
import { validateNodeConfig } from './config-schema'
import type { NodeConfigFile } from './config-schema'
import { parseIpv4Network } from './ipv4-network'
import type { Ipv4Network } from './ipv4-network'

export interface Selector { readonly type: string, readonly value: string }

export interface AppConfig {
  readonly name: string
  readonly netns: string
  /**
   * Adopt the namespace only while `netns` names this one (`<dev>:<ino>`, see netnsIdentity): for a
   * `/proc/<pid>/ns/net` path, whose PID may name another process once the app's has exited (Docker discovery).
   */
  readonly netnsIdentity?: string
  /** Attest this process (it must be in the namespace) rather than the first one found there (Docker: State.Pid). */
  readonly pid?: number
  /** Selector mode: the identity of these selectors; absent: a process in the namespace, attested by the agent. */
  readonly selectors?: readonly Selector[]
  readonly spiffeId?: string
  readonly httpPorts: ReadonlySet<number>
  readonly excludeInboundPorts: readonly number[]
  readonly excludeOutboundPorts: readonly number[]
}

export interface NodeConfig extends ProxyLimits {
  readonly file: string
  readonly delegatedIdentityApi?: string
  readonly policy: string
  readonly admin: HostPort
  readonly logLevel: NodeConfigFile['logLevel']
  readonly ports: NodeConfigFile['ports']
  readonly mark: number
  readonly appNetworks: readonly Ipv4Network[]
  readonly guardBridges: readonly string[]
  readonly httpPorts: ReadonlySet<number>
  readonly services: Readonly<Record<string, string>>
  readonly upgrades: ReadonlySet<string>
  readonly sameDevice: NodeConfigFile['sameDevice']
  readonly apps: readonly AppConfig[]
  readonly docker?: NodeConfigFile['docker']
}

function selectorOf (text: string): Selector {
  const colon = text.indexOf(':')
  return { type: text.slice(0, colon), value: text.slice(colon + 1) }
}

/** Reads and checks the file; throws ConfigError naming every problem. */
export function loadNodeConfig (file: string): NodeConfig {
  const source = readConfigFile(file)
  const raw = validateConfig(validateNodeConfig, source.value ?? {}, file, source.locate)
  const problems: ConfigProblem[] = []
  const problem = (path: string, message: string): void => { problems.push({ path, message, location: source.locate(path) }) }
  const admin = parseHostPort(raw.admin, true)
  if (typeof admin === 'string') problem('/admin', admin)
  const ports = Object.entries(raw.ports)
  for (const [name, port] of ports) if (ports.some(([other, p]) => other !== name && p === port)) problem(`/ports/${name}`, `port ${port} is used twice: tunnel, inbound and outbound need a port each`)
  const networks = raw.appNetworks.map((text, i) => {
    const network = parseIpv4Network(text)
    if (typeof network === 'string') problem(`/appNetworks/${i}`, network)
    return network
  }).filter((n): n is Ipv4Network => typeof n !== 'string')
  checkServices(raw.services, '/services', problem)
  const seen = new Map<string, number>()
  raw.apps.forEach((app, i) => {
    for (const key of [`name ${app.name}`, `netns ${app.netns}`]) {
      if (seen.has(key)) problem(`/apps/${i}`, `the ${key.replace(' ', ' "')}" is also app ${(seen.get(key) ?? 0) + 1}'s`)
      seen.set(key, i)
    }
  })
  if (problems.length > 0) throw new ConfigError(file, problems)
  return Object.freeze({
    file,
    ...(raw.delegatedIdentityApi === undefined ? {} : { delegatedIdentityApi: raw.delegatedIdentityApi }),
    policy: raw.policy,
    admin: admin as HostPort,
    logLevel: raw.logLevel,
    ports: raw.ports,
    mark: raw.mark,
    appNetworks: Object.freeze(networks),
    guardBridges: raw.guard.bridges,
    httpPorts: new Set(raw.httpPorts),
    services: raw.services,
    upgrades: new Set(raw.upgrades),
    sameDevice: raw.sameDevice,
    apps: Object.freeze(raw.apps.map(app => Object.freeze({
      name: app.name,
      netns: app.netns,
      ...(app.selectors === undefined ? {} : { selectors: Object.freeze(app.selectors.map(selectorOf)) }),
      ...(app.spiffeId === undefined ? {} : { spiffeId: app.spiffeId }),
      httpPorts: new Set(app.httpPorts ?? raw.httpPorts),
      excludeInboundPorts: app.excludeInboundPorts,
      excludeOutboundPorts: app.excludeOutboundPorts
    }))),
    ...(raw.docker === undefined ? {} : { docker: raw.docker }),
    ...limitsOf(raw)
  })
}
