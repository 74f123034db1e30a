/**
 * The `federation:` section of the agent's config: the bundle endpoint this agent serves, the relationships it
 * keeps with other trust domains (SPIRE's `federates_with` blocks: changed only here; those made at run time live
 * in the store), and the polling floor. Checked beyond the schema here, so a bad relationship or an unreadable
 * bootstrap bundle stops the agent at start with the field named, not at the first fetch.
 */
import { readFileSync } from 'node:fs'
import { DURATION_SCHEMA, durationSeconds } from '../../config/load'
import type { TrustDomain } from '../../spiffe/id'
import { parseBundleDocument, validateRelationship } from '../store'
import type { BootstrapBundle, FederatedBundleFormat, RelationshipInput } from '../store'

const PATH = { type: 'string', minLength: 1 } as const

export interface FederationConfigFile {
  bundleEndpoint?: {
    /** host:port to listen on, e.g. 0.0.0.0:8443. */
    address: string
    /** https_spiffe: served with the agent's own X509-SVID (spiffe://<td>/spire/server); https_web: certFile and keyFile. */
    profile: 'https_spiffe' | 'https_web'
    certFile?: string
    keyFile?: string
  }
  /** The spiffe_refresh_hint our bundle carries: how often peers are asked to poll it. */
  refreshHint: number | string
  /** Never poll a relationship's endpoint more often than this (1 minute; SPIRE's effective floor is 15 s). */
  minimumRefresh: number | string
  relationships: Array<{
    trustDomain: string
    bundleEndpointUrl: string
    profile: 'https_spiffe' | 'https_web'
    endpointSpiffeId?: string
    /** The trust domain's bundle to authenticate its endpoint until the first fetch (https_spiffe needs one). */
    bundleFile?: string
    bundleFormat: FederatedBundleFormat
  }>
}

export const FEDERATION_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    bundleEndpoint: {
      type: 'object',
      additionalProperties: false,
      required: ['address', 'profile'],
      description: 'The trust domain\'s SPIFFE bundle endpoint, for other trust domains to federate with this one',
      properties: {
        address: { type: 'string', minLength: 1, description: 'host:port to listen on, e.g. 0.0.0.0:8443 (checked in loadAgentConfig)' },
        profile: { enum: ['https_spiffe', 'https_web'] },
        certFile: PATH,
        keyFile: PATH
      }
    },
    refreshHint: { ...DURATION_SCHEMA, default: '5m', description: 'The spiffe_refresh_hint of our bundle (SPIRE: 5 minutes)' },
    minimumRefresh: { ...DURATION_SCHEMA, default: '1m', description: 'The shortest interval between two fetches of a relationship\'s endpoint' },
    relationships: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['trustDomain', 'bundleEndpointUrl', 'profile'],
        properties: {
          trustDomain: { type: 'string', minLength: 1 },
          bundleEndpointUrl: { type: 'string', minLength: 1, description: 'https URL of the trust domain\'s bundle endpoint' },
          profile: { enum: ['https_spiffe', 'https_web'] },
          endpointSpiffeId: { type: 'string', minLength: 1, description: 'https_spiffe: the SPIFFE ID the endpoint presents' },
          bundleFile: { ...PATH, description: 'The trust domain\'s bundle, to authenticate its endpoint until the first fetch' },
          bundleFormat: { enum: ['spiffe', 'pem'], default: 'spiffe' }
        }
      }
    }
  }
} as const

/** Where the bundle endpoint listens, and its profile (https_web: the certificate and key files). */
export interface BundleEndpointConfig {
  readonly host: string
  readonly port: number
  readonly profile: { readonly kind: 'https_spiffe' } | { readonly kind: 'https_web', readonly certFile: string, readonly keyFile: string }
}

export type ConfiguredRelationship = RelationshipInput & { readonly bundle?: BootstrapBundle }

export interface FederationConfig {
  readonly bundleEndpoint?: BundleEndpointConfig
  readonly refreshHintSeconds: number
  readonly minimumRefreshMs: number
  readonly relationships: readonly ConfiguredRelationship[]
}

/** A problem found, at a JSON pointer into the config. */
export type ConfigProblem = (path: string, message: string) => Error

/**
 * The section as the agent uses it; `listen` is the bundle endpoint's address, already checked as host:port.
 * Throws what `problem` makes for the first rule broken.
 */
export function federationConfig (raw: FederationConfigFile, own: TrustDomain, listen: (address: string) => { host: string, port: number }, problem: ConfigProblem): FederationConfig {
  const endpoint = raw.bundleEndpoint
  const relationships = raw.relationships.map((relationship, i) => configuredRelationship(relationship, own, (message: string) => problem(`/federation/relationships/${i}`, message)))
  const names = relationships.map(r => validateRelationship(r, own).trustDomain.name)
  const twice = names.findIndex((name, i) => names.indexOf(name) !== i)
  if (twice >= 0) throw problem(`/federation/relationships/${twice}`, `names ${names[twice]} a second time: one relationship per trust domain`)
  return Object.freeze({
    ...(endpoint === undefined ? {} : { bundleEndpoint: bundleEndpointConfig(endpoint, listen, problem) }),
    refreshHintSeconds: durationSeconds(raw.refreshHint),
    minimumRefreshMs: durationSeconds(raw.minimumRefresh) * 1000,
    relationships: Object.freeze(relationships)
  })
}

function bundleEndpointConfig (raw: NonNullable<FederationConfigFile['bundleEndpoint']>, listen: (address: string) => { host: string, port: number }, problem: ConfigProblem): BundleEndpointConfig {
  const web = raw.profile === 'https_web'
  if (web ? raw.certFile === undefined || raw.keyFile === undefined : raw.certFile !== undefined || raw.keyFile !== undefined) {
    throw problem('/federation/bundleEndpoint', web
      ? 'profile https_web needs certFile and keyFile: the Web PKI certificate (and its chain) for the host name peers dial, and its key'
      : 'certFile and keyFile are for profile https_web only: https_spiffe is served with the agent\'s own SVID')
  }
  const profile = web
    ? Object.freeze({ kind: 'https_web' as const, certFile: raw.certFile as string, keyFile: raw.keyFile as string })
    : Object.freeze({ kind: 'https_spiffe' as const })
  return Object.freeze({ ...listen(raw.address), profile })
}

function configuredRelationship (raw: FederationConfigFile['relationships'][number], own: TrustDomain, problem: (message: string) => Error): ConfiguredRelationship {
  const input: RelationshipInput = {
    trustDomain: raw.trustDomain,
    bundleEndpointUrl: raw.bundleEndpointUrl,
    profile: raw.profile,
    ...(raw.endpointSpiffeId === undefined ? {} : { endpointSpiffeId: raw.endpointSpiffeId })
  }
  let trustDomain
  try {
    trustDomain = validateRelationship(input, own).trustDomain
  } catch (err) {
    throw problem((err as Error).message)
  }
  if (raw.bundleFile === undefined) return Object.freeze(input)
  let text: string
  try {
    text = readFileSync(raw.bundleFile, 'utf8')
    parseBundleDocument(trustDomain, raw.bundleFormat, text)
  } catch (err) {
    throw problem(`bundleFile ${raw.bundleFile}: ${(err as Error).message}`)
  }
  return Object.freeze({ ...input, bundle: Object.freeze({ format: raw.bundleFormat, bundle: text }) })
}
