/**
 * AgentCa's options: their defaults (SPIRE's: CA TTL 24 h, X509-SVID TTL 1 h, JWT-SVID TTL 5 min, EC P-256) and the
 * checks that make a bad value fail at open with ERR_CA_OPTIONS_INVALID naming the option.
 */
import { join } from 'node:path'
import { pino } from 'pino'
import type { Logger } from 'pino'
import { TrustDomain } from '../../spiffe'
import { seconds } from './checks'
import { CaError } from './errors'
import { KEY_TYPES } from './keys'
import type { KeyType } from './keys'
import type { RemoteUpstream } from './remote-upstream'
import type { UpstreamFiles } from './upstream'

export interface AgentCaOptions {
  readonly trustDomain: TrustDomain
  /** The CA state goes in `<dataDir>/ca/` (directory 0700, files 0600). */
  readonly dataDir: string
  /** The authorities' key type and the default for generated SVID keys; default `ec-p256`. */
  readonly keyType?: KeyType
  /** Lifetime of each authority and JWT key; default 86400 (SPIRE). */
  readonly caTtlSeconds?: number
  /** Default X509-SVID lifetime; default 3600. */
  readonly x509SvidTtlSeconds?: number
  /** Default JWT-SVID lifetime; default 300. */
  readonly jwtSvidTtlSeconds?: number
  /** JWT signing key type; default `ec-p256` (ES256), `rsa-2048` signs RS256. */
  readonly jwtKeyType?: KeyType
  /**
   * The operator's CA, which signs our intermediates. Its roots make the bundle: `bundleFile` if given, else the
   * upstream certificate itself, which must then be self-signed.
   */
  readonly upstream?: UpstreamFiles
  /**
   * A remote upstream (the fleet's SPIRE server) that certifies our authorities and takes our JWT keys; its bundle is
   * the trust domain's. Not together with `upstream`.
   */
  readonly remoteUpstream?: RemoteUpstream
  /** spiffe_refresh_hint of the bundle, in seconds; default 300. */
  readonly refreshHintSeconds?: number
  /** The time source; tests inject one. Default `() => new Date()`. */
  readonly clock?: () => Date
  /** Default: a silent logger. */
  readonly logger?: Logger
}

/** The options with defaults applied and checked. */
export interface CaSettings {
  readonly trustDomain: TrustDomain
  readonly directory: string
  readonly keyType: KeyType
  readonly jwtKeyType: KeyType
  readonly caTtlSeconds: number
  readonly x509SvidTtlSeconds: number
  readonly jwtSvidTtlSeconds: number
  readonly refreshHintSeconds: number
  readonly upstream?: UpstreamFiles
  readonly remoteUpstream?: RemoteUpstream
  readonly clock: () => Date
  readonly logger: Logger
}

function invalid (message: string): CaError {
  return new CaError('ERR_CA_OPTIONS_INVALID', message)
}

function keyType (value: unknown, field: string): KeyType {
  if (value === undefined) return 'ec-p256'
  if (!KEY_TYPES.includes(value as KeyType)) throw invalid(`${field} must be one of ${KEY_TYPES.join(', ')}, got ${JSON.stringify(value)}`)
  return value as KeyType
}

export function resolveOptions (options: AgentCaOptions): CaSettings {
  if (!(options.trustDomain instanceof TrustDomain)) throw invalid('trustDomain must be a TrustDomain (from parseTrustDomain)')
  if (typeof options.dataDir !== 'string' || options.dataDir === '') throw invalid('dataDir must name a directory')
  const upstream = options.upstream
  if (upstream !== undefined && (typeof upstream.certFile !== 'string' || typeof upstream.keyFile !== 'string')) {
    throw invalid('upstream needs certFile and keyFile paths')
  }
  if (upstream !== undefined && options.remoteUpstream !== undefined) throw invalid('upstream (CA files) and remoteUpstream (a SPIRE server) exclude each other: the authorities have one signer')
  const time = (field: keyof AgentCaOptions, fallback: number): number => seconds(options[field], fallback, field, 'ERR_CA_OPTIONS_INVALID')
  return {
    trustDomain: options.trustDomain,
    directory: join(options.dataDir, 'ca'),
    keyType: keyType(options.keyType, 'keyType'),
    jwtKeyType: keyType(options.jwtKeyType, 'jwtKeyType'),
    caTtlSeconds: time('caTtlSeconds', 86_400),
    x509SvidTtlSeconds: time('x509SvidTtlSeconds', 3600),
    jwtSvidTtlSeconds: time('jwtSvidTtlSeconds', 300),
    refreshHintSeconds: time('refreshHintSeconds', 300),
    upstream,
    ...(options.remoteUpstream === undefined ? {} : { remoteUpstream: options.remoteUpstream }),
    clock: options.clock ?? (() => new Date()),
    logger: options.logger ?? pino({ level: 'silent' })
  }
}
