/**
 * The sidecar's configuration: a YAML file (optional) and flags, one schema. The common cases need no file:
 * `--inbound 0.0.0.0:8443=127.0.0.1:8080`, `--outbound 127.0.0.1:9001=10.0.0.2:8443@spiffe://td/api,port=8080`.
 * Secure defaults (as ghostunnel's): inbound targets and outbound listeners must be on loopback, where only
 * this network namespace reaches them, unless a listener says `unsafe: true`.
 */
import { isIP } from 'node:net'
import { ConfigError, durationSeconds, readConfigFile, validateConfig } from '../config/load'
import type { ConfigProblem, Locate } from '../config/load'
import { parseIdPattern } from '../policy/id-pattern'
import { parseSpiffeId } from '../spiffe/id'
import { validateSidecarConfig } from './config-schema'
import type { InboundFile, LimitsFile, OutboundFile, SidecarConfigFile } from './config-schema'
import type { HeadLimits } from './http1/limits'
import { parseHostPort } from './host-port'
import type { HostPort } from './host-port'
import { flagListeners } from './listener-flags'
import type { FlagListener, Protocol } from './listener-flags'

export type { Protocol } from './listener-flags'



export interface ListenerConfig {
  readonly name: string
  readonly direction: 'inbound' | 'outbound'
  readonly listen: HostPort
  readonly target: HostPort
  readonly protocol: Protocol
  /** Inbound: send a PROXY protocol v2 header with the peer's SPIFFE ID to the target. */
  readonly proxyProtocol: boolean
  /** Outbound: the server's SPIFFE ID (or pattern) must match this. */
  readonly expect?: string
  /** HTTP mode: protocols a client may switch to (lowercase). */
  readonly upgrades: ReadonlySet<string>
  /**
   * `fixed` listeners: the destination app's port, which the policy's `ports` name. Inbound the target's port;
   * outbound the `servicePort` setting (default: the target's port, which is the peer sidecar's TLS port, so set
   * it when that is not the app's). 0 for the other kinds: each connection names its own.
   */
  readonly servicePort: number
  /**
   * `fixed`: from `listen` to `target`. `http-proxy`: an explicit HTTP proxy, the destination comes with each
   * request. `transparent`: the destination is the connection's original one (SO_ORIGINAL_DST). `target` is unused
   * but by `fixed` listeners.
   */
  readonly kind: 'fixed' | 'http-proxy' | 'transparent'
}

/** How long connections may take and how many there may be (LIMITS in the schema). */
export interface ProxyLimits {
  readonly handshakeTimeoutMs: number
  readonly headTimeoutMs: number
  readonly idleTimeoutMs: number
  readonly maxConnections: number
  readonly maxConnectionsPerPeer: number
  readonly httpLimits: HeadLimits
  readonly drainMs: number
  readonly readyTimeoutMs: number
}

export interface SidecarConfig extends ProxyLimits {
  readonly workloadApi?: string
  readonly spiffeId?: string
  readonly policy: string
  readonly admin: HostPort
  readonly logLevel: SidecarConfigFile['logLevel']
  readonly listeners: readonly ListenerConfig[]
  /** Transparent outbound: the server ID (or pattern) expected at a destination `host:port`. */
  readonly services: Readonly<Record<string, string>>
  /** Transparent mode: destination ports that speak HTTP (per-request decisions, X-Forwarded-Client-Cert). */
  readonly httpPorts: ReadonlySet<number>
}

export interface SidecarFlags {
  workloadApi?: string
  spiffeId?: string
  policy?: string
  admin?: string
  logLevel?: SidecarConfigFile['logLevel']
  readyTimeout?: string
  inbound?: string[]
  inboundHttp?: string[]
  outbound?: string[]
  outboundHttp?: string[]
  httpProxy?: string[]
  transparentOutbound?: number
  transparentInbound?: number
  transparentHttpPorts?: number[]
}

function isLoopback (host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'))
}

/** Reads the optional file, adds the flags' listeners and overrides, validates; throws ConfigError naming each problem. */
export function loadSidecarConfig (file: string | undefined, flags: SidecarFlags = {}): SidecarConfig {
  const source = file === undefined ? undefined : readConfigFile(file)
  const base = source?.value ?? {}
  if (typeof base !== 'object' || base === null || Array.isArray(base)) throw new ConfigError(file ?? 'flags', [{ path: '', message: 'must be a mapping of settings' }])
  const merged: Record<string, unknown> = { ...base }
  for (const key of ['workloadApi', 'spiffeId', 'policy', 'admin', 'logLevel', 'readyTimeout'] as const) if (flags[key] !== undefined) merged[key] = flags[key]
  // A flag is text: `--ready-timeout 30` is whole seconds, as `readyTimeout: 30` is in the file.
  if (flags.readyTimeout !== undefined && /^\d+$/.test(flags.readyTimeout)) merged.readyTimeout = Number(flags.readyTimeout)
  const fileInbound = Array.isArray(merged.inbound) ? merged.inbound as unknown[] : []
  const fileOutbound = Array.isArray(merged.outbound) ? merged.outbound as unknown[] : []
  const fileProxies = Array.isArray(merged.httpProxy) ? merged.httpProxy as unknown[] : []
  const byFlag = {
    inbound: [...flagListeners('inbound', flags.inbound, 'tcp', false), ...flagListeners('inbound-http', flags.inboundHttp, 'http', false)],
    outbound: [...flagListeners('outbound', flags.outbound, 'tcp', true), ...flagListeners('outbound-http', flags.outboundHttp, 'http', true)],
    httpProxy: (flags.httpProxy ?? []).map((listen, i): FlagListener => ({ flag: `--http-proxy flag ${i + 1}`, listener: { listen } }))
  }
  merged.inbound = [...fileInbound, ...byFlag.inbound.map(f => f.listener)]
  merged.outbound = [...fileOutbound, ...byFlag.outbound.map(f => f.listener)]
  merged.httpProxy = [...fileProxies, ...byFlag.httpProxy.map(f => f.listener)]
  const transparentFlags = { outbound: flags.transparentOutbound, inbound: flags.transparentInbound, httpPorts: flags.transparentHttpPorts }
  if (Object.values(transparentFlags).some(value => value !== undefined)) {
    const transparent = typeof merged.transparent === 'object' && merged.transparent !== null ? merged.transparent : {}
    merged.transparent = { ...transparent, ...Object.fromEntries(Object.entries(transparentFlags).filter(([, value]) => value !== undefined)) }
  }
  const name = file ?? 'command-line flags'
  const locate: Locate = (path, key) => {
    const [, list, index] = path.split('/')
    const inFile = { inbound: fileInbound.length, outbound: fileOutbound.length, httpProxy: fileProxies.length }[list ?? '']
    const flagged = inFile !== undefined && Number(index) >= inFile ? byFlag[list as keyof typeof byFlag][Number(index) - inFile] : undefined
    return flagged?.flag ?? source?.locate(path, key)
  }
  // A malformed flag is reported as itself, before the schema would report the fields it left out.
  const badFlags = [
    ...byFlag.inbound.map((f, i) => ({ f, path: `/inbound/${fileInbound.length + i}` })),
    ...byFlag.outbound.map((f, i) => ({ f, path: `/outbound/${fileOutbound.length + i}` }))
  ].filter(({ f }) => f.problem !== undefined)
  if (badFlags.length > 0) {
    throw new ConfigError(name, badFlags.map(({ f, path }) => ({ path: f.field === undefined ? '' : `${path}/${f.field}`, message: f.problem ?? '', location: f.flag })))
  }
  const raw = validateConfig(validateSidecarConfig, merged, name, locate)
  const problems: ConfigProblem[] = []
  const problem = (path: string, message: string): void => { problems.push({ path, message, location: locate(path) }) }
  const address = (path: string, text: string): HostPort => {
    const parsed = parseHostPort(text, !path.endsWith('/target'))
    if (typeof parsed === 'string') problem(path, parsed)
    return typeof parsed === 'string' ? { host: '', port: 0 } : parsed
  }
  const listeners = [
    ...raw.inbound.map((l, i) => listenerOf(l, 'inbound', i)),
    ...raw.outbound.map((l, i) => listenerOf(l, 'outbound', i)),
    ...raw.httpProxy.map((l, i) => listenerOf({ ...l, target: '0.0.0.0:1', protocol: 'http' }, 'outbound', i, 'httpProxy')),
    ...transparentListeners(raw.transparent)
  ]
  function listenerOf (l: InboundFile | OutboundFile, direction: 'inbound' | 'outbound', i: number, list: string = direction): ListenerConfig {
    const path = `/${list}/${i}`
    const listen = address(`${path}/listen`, l.listen)
    const target = address(`${path}/target`, l.target)
    const guarded = direction === 'inbound' ? target : listen
    if (!l.unsafe && guarded.host !== '' && !isLoopback(guarded.host)) {
      problem(`${path}/${direction === 'inbound' ? 'target' : 'listen'}`, `${guarded.host} is not loopback: plaintext would leave this network namespace (set unsafe: true if that is intended)`)
    }
    const expect = 'expect' in l ? l.expect : undefined
    if (expect !== undefined && typeof parseIdPattern(expect) === 'string') problem(`${path}/expect`, `bad SPIFFE ID pattern "${expect}": ${parseIdPattern(expect) as string}`)
    const kind = list === 'httpProxy' ? 'http-proxy' : 'fixed'
    const servicePort = kind === 'fixed' ? ('servicePort' in l ? l.servicePort : undefined) ?? target.port : 0
    return Object.freeze({ name: l.name ?? `${kind === 'fixed' ? direction : kind}-${i + 1}`, kind, direction, listen, target, servicePort, protocol: l.protocol, proxyProtocol: 'proxyProtocol' in l && l.proxyProtocol, upgrades: new Set(l.upgrades), ...(expect === undefined ? {} : { expect }) })
  }
  if (raw.spiffeId !== undefined) {
    try {
      parseSpiffeId(raw.spiffeId)
    } catch (err) {
      problem('/spiffeId', (err as Error).message)
    }
  }
  checkServices(raw.transparent.services, '/transparent/services', problem)
  const admin = address('/admin', raw.admin)
  const names = new Set<string>()
  listeners.forEach(l => {
    if (names.has(l.name)) problem('', `two listeners are named "${l.name}"`)
    names.add(l.name)
  })
  if (listeners.length === 0) problem('', 'no listeners: give --inbound, --inbound-http, --outbound, --outbound-http or --http-proxy (or inbound/outbound/httpProxy in the file)')
  if (problems.length > 0) throw new ConfigError(name, problems)
  return Object.freeze({
    ...(raw.workloadApi === undefined ? {} : { workloadApi: raw.workloadApi }),
    ...(raw.spiffeId === undefined ? {} : { spiffeId: raw.spiffeId }),
    policy: raw.policy,
    admin,
    logLevel: raw.logLevel,
    listeners: Object.freeze(listeners),
    ...limitsOf(raw),
    services: Object.freeze({ ...raw.transparent.services }),
    httpPorts: new Set(raw.transparent.httpPorts)
  })
}

/** Checks a `services` map (destination host:port → expected ID or pattern) found at `at`, reporting each problem. */
export function checkServices (services: Readonly<Record<string, string>>, at: string, problem: (path: string, message: string) => void): void {
  for (const [destination, id] of Object.entries(services)) {
    const path = `${at}/${destination.replace(/~/g, '~0').replace(/\//g, '~1')}`
    if (typeof parseHostPort(destination) === 'string') problem(path, `the key ${parseHostPort(destination) as string}`)
    const pattern = parseIdPattern(id)
    if (typeof pattern === 'string') problem(path, `bad SPIFFE ID pattern "${id}": ${pattern}`)
  }
}

/** The limits of a valid document (the schema's LIMITS), in the units the proxy runs with. */
export function limitsOf (raw: LimitsFile): ProxyLimits {
  return {
    handshakeTimeoutMs: durationSeconds(raw.timeouts.handshake) * 1000,
    headTimeoutMs: durationSeconds(raw.timeouts.head) * 1000,
    idleTimeoutMs: durationSeconds(raw.timeouts.idle) * 1000,
    maxConnections: raw.maxConnections,
    maxConnectionsPerPeer: raw.maxConnectionsPerPeer ?? Math.max(1, Math.floor(raw.maxConnections / 10)),
    httpLimits: Object.freeze({ ...raw.http }),
    drainMs: durationSeconds(raw.drain) * 1000,
    readyTimeoutMs: durationSeconds(raw.readyTimeout) * 1000
  }
}

/** The transparent listeners: outbound on loopback (where nat OUTPUT redirects), inbound on every address. */
function transparentListeners (transparent: SidecarConfigFile['transparent']): ListenerConfig[] {
  const unused = { host: '', port: 0 }
  const common = { kind: 'transparent' as const, protocol: 'tcp' as const, target: unused, servicePort: 0, proxyProtocol: false, upgrades: new Set(transparent.upgrades) }
  return [
    ...(transparent.outbound === undefined ? [] : [{ ...common, name: 'transparent-outbound', direction: 'outbound' as const, listen: { host: '127.0.0.1', port: transparent.outbound } }]),
    ...(transparent.inbound === undefined ? [] : [{ ...common, name: 'transparent-inbound', direction: 'inbound' as const, listen: { host: '0.0.0.0', port: transparent.inbound } }])
  ].map(listener => Object.freeze(listener))
}
