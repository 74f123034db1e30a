/**
 * The agent's configuration: a YAML file (optional) overridden by command-line flags, validated by one schema.
 * Defaults are SPIRE's where SPIRE has one (CA 24 h, X509-SVID 1 h, JWT-SVID 5 min, EC P-256).
 */
import { ConfigError, DURATION_SCHEMA, compileSchema, durationSeconds, readConfigFile, validateConfig } from '../config/load'
import { parseSpiffeId, parseTrustDomain } from '../spiffe/id'
import type { SpiffeId, TrustDomain } from '../spiffe/id'
import type { WorkloadApiLimits } from './workload/admission'
import { FEDERATION_SCHEMA, federationConfig } from './federation/federation-config'
import type { FederationConfig, FederationConfigFile } from './federation/federation-config'

export interface AgentConfigFile {
  trustDomain: string
  dataDir: string
  socket: string
  adminSocket: string
  /** Group (name or gid) allowed to use the admin socket; without one the socket is 0600, owner only. */
  adminSocketGroup?: string
  /** SPIRE's server API socket (Entry service, health), for SPIRE's tools and orchestrators written for SPIRE. */
  serverSocket: string
  /** Group (name or gid) given the server socket (0770); without one, the agent's own group. */
  serverSocketGroup?: string
  /**
   * Let workloads attested to an entry with `admin: true` call the server socket too (SPIRE's admin callers): the
   * socket opens to every local user (0777, its directory 0755) and each call is authorized by the caller's kernel
   * credentials. Off: only the socket's owner, its group and root can connect (0770, directory 0750).
   */
  serverSocketAdminWorkloads: boolean
  /**
   * SPIFFE IDs of the workloads that may call the Delegated Identity API (SPIRE's authorized_delegates): a caller
   * attested to an entry with one of these IDs gets other workloads' SVIDs. None (the default): every call is refused.
   */
  authorizedDelegates: string[]
  /** A socket that serves the Delegated Identity API alone (it is served on the admin socket too). */
  delegatedIdentitySocket?: string
  /** Group (name or gid) given the delegated identity socket (0660); without one it is 0666, each caller attested and authorized. */
  delegatedIdentitySocketGroup?: string
  /** The Docker Engine API socket, for docker:* selectors; without it only unix:* selectors (and the container ID) are attested. */
  dockerSocket?: string
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'
  /** host:port of a Prometheus /metrics endpoint (plain HTTP); none without it. */
  metrics?: string
  /** Federation with other trust domains: the bundle endpoint this agent serves (off without it), the relationships. */
  federation: FederationConfigFile
  ca: {
    keyType: 'ec-p256' | 'rsa-2048'
    ttl: number | string
    upstream?: { certFile: string, keyFile: string, bundleFile?: string }
  }
  /**
   * The device role: this agent's CA is a device CA under the fleet's SPIRE server (SPIRE's nested topology), the
   * device proven by its birth certificate (x509pop). Not together with ca.upstream.
   */
  upstream?: {
    /** host:port of the SPIRE server (its bind_port, 8081 by default). */
    address: string
    /** PEM: the trust domain's roots to know the server by at first (SPIRE agent's trust_bundle_path). */
    trustBundleFile: string
    x509pop: { certFile: string, keyFile: string }
    timeout: number | string
  }
  /**
   * The upstream role: devices (Chaperone agents with `upstream:`, SPIRE agents and servers) attest to this agent on a
   * TCP port with x509pop, as to a SPIRE server, and nest under its CA.
   */
  fleet?: {
    /** host:port to listen on (SPIRE's bind_address:bind_port, 0.0.0.0:8081 by default). */
    address: string
    /** PEM: the manufacturers' roots birth certificates must chain to (SPIRE's x509pop ca_bundle_path). */
    manufacturerBundleFile: string
  }
  svid: {
    x509Ttl: number | string
    jwtTtl: number | string
    jwtKeyType: 'ec-p256' | 'rsa-2048'
  }
  workloadApi: {
    idleTimeout: number | string
    maxConnectionsPerUid: number
    reservedDescriptors: number
  }
}

const PATH = { type: 'string', minLength: 1 } as const
const GROUP = { type: 'string', pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]*$' } as const

export const AGENT_CONFIG_SCHEMA = {
  $id: 'https://chaperone.invalid/schemas/agent-config.json',
  type: 'object',
  additionalProperties: false,
  required: ['trustDomain'],
  properties: {
    trustDomain: { type: 'string', minLength: 1, description: 'The trust domain this agent is the CA of, e.g. plant.example' },
    dataDir: { ...PATH, default: '/var/lib/chaperone/agent', description: 'Registration store, CA keys and state (0700)' },
    socket: { ...PATH, default: '/run/chaperone/workload.sock', description: 'The SPIFFE Workload API socket (world-connectable)' },
    adminSocket: { ...PATH, default: '/run/chaperone/admin.sock', description: 'The admin API socket (0600, or 0660 with adminSocketGroup)' },
    adminSocketGroup: { ...GROUP },
    serverSocket: { ...PATH, default: '/tmp/spire-server/private/api.sock', description: 'SPIRE\'s server API socket, where SPIRE\'s default is (0770; its directory 0750)' },
    serverSocketGroup: { ...GROUP },
    serverSocketAdminWorkloads: { type: 'boolean', default: false, description: 'Workloads attested to an entry with admin: true may call the server socket too (it opens to every local user; each call is authorized)' },
    authorizedDelegates: {
      type: 'array',
      items: { type: 'string', minLength: 1 },
      default: [],
      description: 'SPIFFE IDs of the workloads that may call the Delegated Identity API, e.g. spiffe://plant.example/node-proxy (checked in loadAgentConfig)'
    },
    delegatedIdentitySocket: { ...PATH, description: 'A socket serving only the Delegated Identity API (0666, or 0660 with delegatedIdentitySocketGroup; every caller attested and authorized)' },
    delegatedIdentitySocketGroup: { ...GROUP },
    dockerSocket: { ...PATH, description: 'The Docker Engine API socket (e.g. /var/run/docker.sock), for docker:* selectors' },
    logLevel: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace'], default: 'info' },
    metrics: { type: 'string', minLength: 1, description: 'host:port of a Prometheus /metrics endpoint, e.g. 127.0.0.1:9464 (checked in loadAgentConfig)' },
    federation: FEDERATION_SCHEMA,
    ca: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        keyType: { enum: ['ec-p256', 'rsa-2048'], default: 'ec-p256' },
        ttl: { ...DURATION_SCHEMA, default: '24h' },
        upstream: {
          type: 'object',
          additionalProperties: false,
          required: ['certFile', 'keyFile'],
          properties: { certFile: PATH, keyFile: PATH, bundleFile: PATH }
        }
      }
    },
    upstream: {
      type: 'object',
      additionalProperties: false,
      required: ['address', 'trustBundleFile', 'x509pop'],
      description: 'The device role: a device CA under the fleet\'s SPIRE server, the device proven by its birth certificate',
      properties: {
        address: { type: 'string', minLength: 1, description: 'host:port of the SPIRE server, e.g. spire.fleet.example:8081 (checked in loadAgentConfig)' },
        trustBundleFile: { ...PATH, description: 'PEM roots of the trust domain to know the server by at first (SPIRE agent\'s trust_bundle_path)' },
        x509pop: {
          type: 'object',
          additionalProperties: false,
          required: ['certFile', 'keyFile'],
          properties: {
            certFile: { ...PATH, description: 'PEM: the birth certificate, then the intermediates up to the manufacturer\'s root' },
            keyFile: { ...PATH, description: 'PEM: the birth certificate\'s private key' }
          }
        },
        timeout: { ...DURATION_SCHEMA, default: '30s', description: 'How long one call to the server may take' }
      }
    },
    fleet: {
      type: 'object',
      additionalProperties: false,
      required: ['manufacturerBundleFile'],
      description: 'The upstream role: devices attest here with their birth certificates (x509pop) and nest under this CA',
      properties: {
        address: { type: 'string', minLength: 1, default: '0.0.0.0:8081', description: 'host:port to listen on (checked in loadAgentConfig)' },
        manufacturerBundleFile: { ...PATH, description: 'PEM: the manufacturers\' roots birth certificates must chain to' }
      }
    },
    svid: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        x509Ttl: { ...DURATION_SCHEMA, default: '1h' },
        jwtTtl: { ...DURATION_SCHEMA, default: '5m' },
        jwtKeyType: { enum: ['ec-p256', 'rsa-2048'], default: 'ec-p256' }
      }
    },
    workloadApi: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'Limits on the world-connectable Workload API socket, so that no local user can starve the agent',
      properties: {
        idleTimeout: { ...DURATION_SCHEMA, default: '5s', description: 'A connection with no call in progress for this long is closed, also one that never makes a call' },
        maxConnectionsPerUid: { type: 'integer', minimum: 1, default: 1024, description: 'Connections one uid may hold open at once' },
        reservedDescriptors: { type: 'integer', minimum: 0, default: 256, description: 'File descriptors kept for uids the agent has issued an identity to' }
      }
    }
  }
} as const

const validate = compileSchema<AgentConfigFile>(AGENT_CONFIG_SCHEMA)

/** The configuration as the agent uses it: durations in seconds, the trust domain parsed. */
export interface AgentConfig {
  readonly trustDomain: TrustDomain
  readonly dataDir: string
  readonly socket: string
  readonly adminSocket: string
  readonly adminSocketGroup?: string
  readonly serverSocket: string
  readonly serverSocketGroup?: string
  readonly serverSocketAdminWorkloads: boolean
  /** Canonical SPIFFE IDs, each once. */
  readonly authorizedDelegates: readonly string[]
  readonly delegatedIdentitySocket?: string
  readonly delegatedIdentitySocketGroup?: string
  readonly dockerSocket?: string
  readonly logLevel: AgentConfigFile['logLevel']
  /** Where /metrics is served, when it is. */
  readonly metrics?: { readonly host: string, readonly port: number }
  /** The bundle endpoint (when it is served), the relationships from the file, the refresh settings. */
  readonly federation: FederationConfig
  readonly ca: { readonly keyType: AgentConfigFile['ca']['keyType'], readonly ttlSeconds: number, readonly upstream?: Readonly<NonNullable<AgentConfigFile['ca']['upstream']>> }
  readonly upstream?: DeviceUpstreamConfig
  readonly fleet?: FleetConfig
  readonly svid: { readonly x509TtlSeconds: number, readonly jwtTtlSeconds: number, readonly jwtKeyType: AgentConfigFile['svid']['jwtKeyType'] }
  readonly workloadApi: WorkloadApiLimits
}

/** The device role's settings (AgentConfigFile['upstream']), the timeout in milliseconds. */
export interface DeviceUpstreamConfig {
  readonly address: string
  readonly trustBundleFile: string
  readonly x509pop: { readonly certFile: string, readonly keyFile: string }
  readonly timeoutMs: number
}

/** The upstream role's settings: where to listen, and the manufacturers' roots file. */
export interface FleetConfig {
  readonly host: string
  readonly port: number
  readonly manufacturerBundleFile: string
}

/** Flag values that override the file's (undefined = not given). */
export type AgentFlags = Partial<Pick<AgentConfigFile, 'trustDomain' | 'dataDir' | 'socket' | 'adminSocket' | 'adminSocketGroup' | 'serverSocket' | 'serverSocketGroup' | 'serverSocketAdminWorkloads' | 'dockerSocket' | 'logLevel' | 'metrics'>>

/** Reads the optional file, applies the flags over it, validates everything; throws ConfigError naming each problem. */
export function loadAgentConfig (file: string | undefined, flags: AgentFlags = {}): AgentConfig {
  const source = file === undefined ? undefined : readConfigFile(file)
  const base = source?.value ?? {}
  if (typeof base !== 'object' || base === null || Array.isArray(base)) {
    throw new ConfigError(file ?? 'flags', [{ path: '', message: 'must be a mapping of settings' }])
  }
  const merged: Record<string, unknown> = { ...base }
  for (const [key, value] of Object.entries(flags)) if (value !== undefined) merged[key] = value
  const fromFlag = (path: string): string | undefined => {
    const key = path.split('/')[1]
    return key !== undefined && (flags as Record<string, unknown>)[key] !== undefined ? `--${key.replace(/[A-Z]/g, c => `-${c.toLowerCase()}`)}` : undefined
  }
  const name = file ?? 'command-line flags'
  const raw = validateConfig(validate, merged, name, (path, key) => fromFlag(path) ?? source?.locate(path, key))
  let trustDomain: TrustDomain
  try {
    trustDomain = parseTrustDomain(raw.trustDomain)
  } catch (err) {
    throw new ConfigError(name, [{ path: '/trustDomain', message: (err as Error).message, location: fromFlag('/trustDomain') ?? source?.locate('/trustDomain') }])
  }
  const x509TtlSeconds = durationSeconds(raw.svid.x509Ttl)
  const caTtlSeconds = durationSeconds(raw.ca.ttl)
  if (x509TtlSeconds >= caTtlSeconds) {
    throw new ConfigError(name, [{ path: '/svid/x509Ttl', message: `must be shorter than ca.ttl (${caTtlSeconds} s): a leaf never outlives its CA`, location: source?.locate('/svid/x509Ttl') }])
  }
  if (raw.upstream !== undefined && raw.ca.upstream !== undefined) {
    throw new ConfigError(name, [{ path: '/upstream', message: 'and ca.upstream exclude each other: the CA\'s authorities are signed by the fleet\'s SPIRE server (upstream) or by CA files (ca.upstream), not both', location: source?.locate('/upstream') }])
  }
  if (raw.delegatedIdentitySocketGroup !== undefined && raw.delegatedIdentitySocket === undefined) {
    throw new ConfigError(name, [{ path: '/delegatedIdentitySocketGroup', message: 'is the group of delegatedIdentitySocket: set that socket too (without it the Delegated Identity API is served on the admin socket only)', location: source?.locate('/delegatedIdentitySocketGroup') }])
  }
  for (const [path, address, example] of [['/upstream/address', raw.upstream?.address, 'spire.fleet.example:8081'], ['/fleet/address', raw.fleet?.address, '0.0.0.0:8081'], ['/metrics', raw.metrics, '127.0.0.1:9464'], ['/federation/bundleEndpoint/address', raw.federation.bundleEndpoint?.address, '0.0.0.0:8443']] as const) {
    if (address === undefined || hostPort(address) !== undefined) continue
    throw new ConfigError(name, [{
      path,
      message: `must be host:port (a name, an IPv4 address or an [IPv6] address, and a port from 1 to 65535), e.g. ${example}, not ${JSON.stringify(address)}`,
      location: fromFlag(path) ?? source?.locate(path)
    }])
  }
  const authorizedDelegates = delegateIds(raw.authorizedDelegates, trustDomain, (path, message) => new ConfigError(name, [{ path, message, location: source?.locate(path) }]))
  const federation = federationConfig(raw.federation, trustDomain, address => hostPort(address) as { host: string, port: number },
    (path, message) => new ConfigError(name, [{ path, message, location: source?.locate(path) }]))
  return Object.freeze({
    trustDomain,
    dataDir: raw.dataDir,
    socket: raw.socket,
    adminSocket: raw.adminSocket,
    ...(raw.adminSocketGroup === undefined ? {} : { adminSocketGroup: raw.adminSocketGroup }),
    serverSocket: raw.serverSocket,
    ...(raw.serverSocketGroup === undefined ? {} : { serverSocketGroup: raw.serverSocketGroup }),
    serverSocketAdminWorkloads: raw.serverSocketAdminWorkloads,
    authorizedDelegates,
    ...(raw.delegatedIdentitySocket === undefined ? {} : { delegatedIdentitySocket: raw.delegatedIdentitySocket }),
    ...(raw.delegatedIdentitySocketGroup === undefined ? {} : { delegatedIdentitySocketGroup: raw.delegatedIdentitySocketGroup }),
    ...(raw.dockerSocket === undefined ? {} : { dockerSocket: raw.dockerSocket }),
    logLevel: raw.logLevel,
    ...(raw.metrics === undefined ? {} : { metrics: Object.freeze(hostPort(raw.metrics) as { host: string, port: number }) }),
    federation,
    ca: Object.freeze({ keyType: raw.ca.keyType, ttlSeconds: caTtlSeconds, ...(raw.ca.upstream === undefined ? {} : { upstream: raw.ca.upstream }) }),
    ...(raw.upstream === undefined ? {} : { upstream: deviceUpstream(raw.upstream) }),
    ...(raw.fleet === undefined ? {} : { fleet: fleetConfig(raw.fleet) }),
    svid: Object.freeze({ x509TtlSeconds, jwtTtlSeconds: durationSeconds(raw.svid.jwtTtl), jwtKeyType: raw.svid.jwtKeyType }),
    workloadApi: Object.freeze({
      idleTimeoutMs: durationSeconds(raw.workloadApi.idleTimeout) * 1000,
      maxConnectionsPerUid: raw.workloadApi.maxConnectionsPerUid,
      reservedDescriptors: raw.workloadApi.reservedDescriptors
    })
  })
}

/**
 * The authorized delegates as canonical SPIFFE IDs, each once. Only an entry's SPIFFE ID can match, and entries are
 * workloads of our own trust domain, so anything else could never authorize anyone: refused, saying why.
 */
function delegateIds (ids: readonly string[], trustDomain: TrustDomain, problem: (path: string, message: string) => ConfigError): readonly string[] {
  const canonical = ids.map((text, i) => {
    let id: SpiffeId
    try {
      id = parseSpiffeId(text)
    } catch (err) {
      throw problem(`/authorizedDelegates/${i}`, (err as Error).message)
    }
    if (!id.hasPath || !id.memberOf(trustDomain)) {
      throw problem(`/authorizedDelegates/${i}`, `must be the SPIFFE ID of a workload of this agent's trust domain (spiffe://${trustDomain.name}/…): only its entries can name a delegate`)
    }
    return id.toString()
  })
  return Object.freeze([...new Set(canonical)])
}

function deviceUpstream (raw: NonNullable<AgentConfigFile['upstream']>): DeviceUpstreamConfig {
  const { address, trustBundleFile, x509pop, timeout } = raw
  return Object.freeze({ address, trustBundleFile, x509pop: Object.freeze({ ...x509pop }), timeoutMs: durationSeconds(timeout) * 1000 })
}

/** host:port, with [v6] brackets (kept off the host), the port 1–65535; undefined when it is not one. */
function hostPort (address: string): { host: string, port: number } | undefined {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(address)
  const port = Number(match?.[3])
  return match === null || port < 1 || port > 65535 ? undefined : { host: match[1] ?? match[2], port }
}

function fleetConfig (raw: NonNullable<AgentConfigFile['fleet']>): FleetConfig {
  return Object.freeze({ ...hostPort(raw.address) as { host: string, port: number }, manufacturerBundleFile: raw.manufacturerBundleFile })
}
