/**
 * The schema of the node proxy's configuration file, compiled once: what each setting may be and its default.
 * The limits and HTTP-mode settings are the sidecar's (proxy/config-schema.ts), so the two modes read alike.
 */
import { compileSchema } from '../config/load'
import { LIMITS, PROCESS, UPGRADES } from '../proxy'
import type { LimitsFile } from '../proxy'

export interface AppFile {
  name: string
  netns: string
  selectors?: string[]
  spiffeId?: string
  httpPorts?: number[]
  excludeInboundPorts: number[]
  excludeOutboundPorts: number[]
}

export interface NodeConfigFile extends LimitsFile {
  delegatedIdentityApi?: string
  policy: string
  admin: string
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'
  ports: { tunnel: number, inbound: number, outbound: number }
  mark: number
  appNetworks: string[]
  guard: { bridges: string[] }
  httpPorts: number[]
  services: Record<string, string>
  upgrades: string[]
  sameDevice: 'handoff' | 'tunnel'
  apps: AppFile[]
  docker?: { socket: string, network: string, label?: string }
}

const PORT = { type: 'integer', minimum: 1, maximum: 65535 } as const
const PORTS = { type: 'array', uniqueItems: true, items: PORT } as const
const NAME = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$' } as const

const APP = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'netns'],
  properties: {
    name: { ...NAME, description: 'the app, in logs, metrics (label app) and /status' },
    netns: { type: 'string', pattern: '^/', description: 'its network namespace: /var/run/netns/<name>, /proc/<pid>/ns/net or a bind mount' },
    selectors: { type: 'array', minItems: 1, items: { type: 'string', pattern: '^[^:]+:.+$' }, description: 'ask for the identity of these selectors (type:value) instead of attesting a process in the namespace' },
    spiffeId: { type: 'string', minLength: 1, description: 'which identity to use when several are issued (default: the first)' },
    httpPorts: { ...PORTS, description: 'this app\'s HTTP ports (default: the node\'s httpPorts)' },
    excludeInboundPorts: { ...PORTS, default: [] },
    excludeOutboundPorts: { ...PORTS, default: [] }
  }
} as const

const SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['policy'],
  properties: {
    delegatedIdentityApi: { type: 'string', minLength: 1, description: 'the agent\'s Delegated Identity API socket (default: $SPIRE_ADMIN_ENDPOINT_SOCKET)' },
    ...PROCESS,
    admin: { type: 'string', minLength: 3, default: '127.0.0.1:15000', description: 'host:port of /live, /ready, /status and /metrics' },
    ports: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'the ports the node proxy listens on inside every app\'s namespace',
      properties: {
        tunnel: { ...PORT, default: 15008, description: 'mutual TLS from other node proxies; the only port the guard admits between apps' },
        inbound: { ...PORT, default: 15006, description: 'mutual TLS from sidecars, redirected from every other port' },
        outbound: { ...PORT, default: 15001, description: 'the app\'s own TCP, redirected (127.0.0.1)' }
      }
    },
    mark: { type: 'integer', minimum: 1, maximum: 4294967295, default: 1337, description: 'SO_MARK of the node proxy\'s sockets in app namespaces, exempt from the redirect' },
    appNetworks: { type: 'array', default: [], items: { type: 'string', pattern: '^\\d{1,3}(\\.\\d{1,3}){3}/\\d{1,2}$' }, description: 'IPv4 networks (CIDR) of apps node proxies serve: reached through their tunnel port' },
    guard: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: { bridges: { type: 'array', default: [], uniqueItems: true, items: { type: 'string', pattern: '^[A-Za-z0-9_.-]{1,15}$' }, description: 'app network bridges where only the tunnel port passes between apps' } }
    },
    httpPorts: { ...PORTS, default: [], description: 'destination ports that speak HTTP, for every app' },
    services: { type: 'object', default: {}, additionalProperties: { type: 'string', minLength: 1 }, description: 'the SPIFFE ID (or pattern) expected at a destination host:port' },
    upgrades: UPGRADES,
    sameDevice: {
      type: 'string',
      enum: ['handoff', 'tunnel'],
      default: 'handoff',
      description: 'a call between two apps this node proxy serves: handed from one to the other inside the process (no byte leaves it, so no TLS), or sent through the tunnel port like any other'
    },
    apps: { type: 'array', default: [], items: APP, description: 'apps by network namespace (the file is watched: apps added or removed are served or let go)' },
    docker: {
      type: 'object',
      additionalProperties: false,
      properties: {
        socket: { type: 'string', pattern: '^/', default: '/var/run/docker.sock' },
        network: { type: 'string', minLength: 1, default: 'proxy-redirect', description: 'every running container attached to it is served' },
        label: { type: 'string', minLength: 1, description: 'only containers with this label' }
      }
    },
    ...LIMITS
  }
} as const

export const validateNodeConfig = compileSchema<NodeConfigFile>(SCHEMA)
