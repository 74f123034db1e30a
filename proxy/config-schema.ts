/**
 * The schema of the sidecar's configuration (file and flags alike), compiled once: what each setting may be and
 * its default. proxy/config.ts turns a valid document into the frozen SidecarConfig the sidecar runs with.
 */
import { DURATION_SCHEMA, compileSchema } from '../config/load'
import type { Protocol } from './listener-flags'

export interface ListenerFile { name?: string, listen: string, target: string, protocol: Protocol, unsafe: boolean, upgrades: string[] }
export interface InboundFile extends ListenerFile { proxyProtocol: boolean }
export interface OutboundFile extends ListenerFile { expect?: string, servicePort?: number }

/** The settings LIMITS describes, as the schema leaves them (defaults filled). */
export interface LimitsFile {
  timeouts: { handshake: number | string, head: number | string, idle: number | string }
  maxConnections: number
  maxConnectionsPerPeer?: number
  http: { maxHeaders: number, maxHeadBytes: number }
  drain: number | string
  readyTimeout: number | string
}

export interface SidecarConfigFile extends LimitsFile {
  workloadApi?: string
  spiffeId?: string
  policy: string
  admin: string
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'
  inbound: InboundFile[]
  outbound: OutboundFile[]
  httpProxy: Array<{ name?: string, listen: string, unsafe: boolean, upgrades: string[] }>
  transparent: { outbound?: number, inbound?: number, httpPorts: number[], services: Record<string, string>, upgrades: string[] }
}

const ADDRESS = { type: 'string', minLength: 3, description: 'host:port ([v6]:port for IPv6)' } as const
const LISTENER = {
  name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$', description: 'for logs and metrics (default: inbound-N / outbound-N)' },
  listen: ADDRESS,
  target: ADDRESS,
  protocol: { enum: ['tcp', 'http'], default: 'tcp' },
  unsafe: { type: 'boolean', default: false, description: 'allow a non-loopback inbound target or outbound listener' }
} as const
export const UPGRADES = {
  type: 'array',
  default: ['websocket'],
  uniqueItems: true,
  items: { type: 'string', pattern: '^[!#$%&\'*+.^_`|~0-9a-z-]+$' },
  description: 'HTTP mode: protocols a client may switch to with Upgrade (lowercase tokens); others, h2c among them, are removed'
} as const

/** The policy and the log level: a proxy process's, the sidecar's and node mode's alike. */
export const PROCESS = {
  policy: { type: 'string', minLength: 1, description: 'the policy file (watched, reloaded on change and SIGHUP)' },
  logLevel: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace'], default: 'info' }
} as const

/** How long connections may take and how many there may be: the sidecar's and node mode's alike. */
export const LIMITS = {
  timeouts: {
    type: 'object',
    additionalProperties: false,
    default: {},
    properties: {
      handshake: { ...DURATION_SCHEMA, default: '10s' },
      head: { ...DURATION_SCHEMA, default: '10s', description: 'HTTP mode: how long a request head may take (from the connection\'s start for the first, from its first byte for the next)' },
      idle: { ...DURATION_SCHEMA, default: '1h' }
    }
  },
  maxConnections: { type: 'integer', minimum: 1, default: 10000, description: 'open connections per listener' },
  maxConnectionsPerPeer: { type: 'integer', minimum: 1, description: 'open connections per peer SPIFFE ID on an inbound listener (default: a tenth of maxConnections)' },
  http: {
    type: 'object',
    additionalProperties: false,
    default: {},
    properties: {
      maxHeaders: { type: 'integer', minimum: 1, maximum: 10000, default: 100, description: 'header lines a request may have (more: 431)' },
      maxHeadBytes: { type: 'integer', minimum: 1024, maximum: 1048576, default: 65536, description: 'bytes a request head may take (more: 431)' }
    }
  },
  drain: { ...DURATION_SCHEMA, default: '15s', description: 'after SIGTERM, how long open connections may finish' },
  readyTimeout: { ...DURATION_SCHEMA, default: '30s', description: 'how long to wait at start for the first SVID' }
} as const

const SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['policy'],
  properties: {
    workloadApi: { type: 'string', minLength: 1, description: 'the Workload API address (default: $SPIFFE_ENDPOINT_SOCKET)' },
    spiffeId: { type: 'string', minLength: 1, description: 'which identity to use when the Workload API gives several (default: the first, the default identity)' },
    ...PROCESS,
    admin: { ...ADDRESS, default: '127.0.0.1:15000' },
    inbound: {
      type: 'array',
      default: [],
      items: { type: 'object', additionalProperties: false, required: ['listen', 'target'], properties: { ...LISTENER, upgrades: UPGRADES, proxyProtocol: { type: 'boolean', default: false } } }
    },
    outbound: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['listen', 'target'],
        properties: {
          ...LISTENER,
          upgrades: UPGRADES,
          expect: { type: 'string', minLength: 1 },
          servicePort: { type: 'integer', minimum: 1, maximum: 65535, description: 'the service (app) port this listener stands for, which policy rules\' ports name (default: the target\'s port)' }
        }
      }
    },
    httpProxy: {
      type: 'array',
      default: [],
      description: 'explicit HTTP proxies (CONNECT and absolute-form) for apps that honour HTTP_PROXY',
      items: { type: 'object', additionalProperties: false, required: ['listen'], properties: { name: LISTENER.name, listen: ADDRESS, unsafe: LISTENER.unsafe, upgrades: UPGRADES } }
    },
    transparent: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'transparent mode, after `chaperone proxy init-iptables` redirected the namespace\'s TCP',
      properties: {
        outbound: { type: 'integer', minimum: 1, maximum: 65535, description: 'the port redirected outbound TCP arrives on (127.0.0.1)' },
        inbound: { type: 'integer', minimum: 1, maximum: 65535, description: 'the port redirected inbound TCP arrives on (mutual TLS, all addresses)' },
        httpPorts: { type: 'array', default: [], uniqueItems: true, items: { type: 'integer', minimum: 1, maximum: 65535 }, description: 'destination ports that speak HTTP: decided per request, X-Forwarded-Client-Cert set inbound' },
        services: { type: 'object', default: {}, additionalProperties: { type: 'string', minLength: 1 }, description: 'the SPIFFE ID (or pattern) expected at a destination host:port' },
        upgrades: UPGRADES
      }
    },
    ...LIMITS
  }
} as const

export const validateSidecarConfig = compileSchema<SidecarConfigFile>(SCHEMA)
