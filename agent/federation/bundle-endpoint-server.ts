/**
 * The trust domain's SPIFFE bundle endpoint (SPIFFE Federation §4–5, as SPIRE's server serves it:
 * pkg/server/endpoints/bundle/server.go): `GET /` answers the bundle in the SPIFFE format, `spiffe_sequence` and
 * `spiffe_refresh_hint` included (application/json); another method is 405, another path 404. Over TLS with one of
 * the standard's two profiles:
 * - `https_spiffe`: the agent's own X509-SVID `spiffe://<td>/spire/server` (what federating peers name as the
 *   endpoint's SPIFFE ID), renewed at half-life and when the CA rotates;
 * - `https_web`: an operator's certificate and key (a Web PKI certificate for the host name peers dial), read again
 *   when either file changes; a pair that does not load is logged and the last good one kept.
 * It faces other organisations: requests are rate-limited per address (429), heads and requests bounded in time,
 * connections capped; every refusal is logged, at most once per address and reason per 10 s.
 */
import { readFileSync, statSync } from 'node:fs'
import { createServer } from 'node:https'
import type { Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { Logger } from 'pino'
import { RateLimitedLog } from '../../log/limited-log'
import type { AgentCa } from '../ca'
import { ServerSvid } from '../fleet/server-svid'
import type { RegistrationStore } from '../store'
import { FederationError } from './errors'
import { RequestRate } from './request-rate'
import type { RequestRateLimits } from './request-rate'

export type BundleEndpointProfile =
  | { readonly kind: 'https_spiffe' }
  | { readonly kind: 'https_web', readonly certFile: string, readonly keyFile: string }

export interface BundleEndpointOptions {
  readonly host: string
  readonly port: number
  readonly profile: BundleEndpointProfile
  readonly ca: AgentCa
  readonly store: Pick<RegistrationStore, 'ownBundle'>
  readonly logger: Logger
  readonly rate?: Partial<RequestRateLimits>
  /** How often https_web's files are checked for a change; 5 s unless set. */
  readonly reloadCheckMs?: number
}

const DEFAULT_RATE: RequestRateLimits = { perSecond: 5, burst: 20, maxAddresses: 10_000 }
const MAX_CONNECTIONS = 1024
const REQUEST_TIMEOUT_MS = 10_000

interface KeyPair { key: string, cert: string, version: string }

export class BundleEndpointServer {
  readonly #server: Server
  readonly #stops: Array<() => void>

  private constructor (server: Server, stops: Array<() => void>) {
    this.#server = server
    this.#stops = stops
  }

  static async start (options: BundleEndpointOptions): Promise<BundleEndpointServer> {
    const { ca, store, logger, profile } = options
    const refusals = new RateLimitedLog(logger)
    const rate = new RequestRate({ ...DEFAULT_RATE, ...options.rate })
    const stops: Array<() => void> = []
    const pair = profile.kind === 'https_web' ? readPair(profile.certFile, profile.keyFile) : undefined
    const svid = profile.kind === 'https_spiffe' ? await ServerSvid.start(ca, credential => { server.setSecureContext({ key: credential.keyPem, cert: credential.chainPem }) }, logger) : undefined
    if (svid !== undefined) stops.push(() => { svid.stop() })
    const initial = svid === undefined ? { key: pair?.key, cert: pair?.cert } : { key: svid.credential.keyPem, cert: svid.credential.chainPem }
    const server = createServer({ ...initial, requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS, keepAliveTimeout: 5_000, maxHeaderSize: 8192 }, (req, res) => {
      const address = req.socket.remoteAddress ?? 'unknown'
      const refuse = (code: number, reason: string, body: string, headers: Record<string, string> = {}): void => {
        refusals.warn(`${address} ${reason}`, { address, reason, method: req.method, path: req.url }, 'federation: bundle endpoint request refused')
        res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8', ...headers }).end(`${body}\n`)
      }
      if (!rate.take(address)) { refuse(429, 'rate_limited', 'too many requests', { 'retry-after': '1' }); return }
      if ((req.url ?? '').split('?')[0] !== '/') { refuse(404, 'not_found', 'not found'); return }
      if (req.method !== 'GET') { refuse(405, 'method_not_allowed', 'method not allowed', { allow: 'GET' }); return }
      const bundle = store.ownBundle(ca.bundle())
      res.writeHead(200, { 'content-type': 'application/json' }).end(bundle.marshal())
      logger.debug({ address, sequence: bundle.sequence }, 'federation: bundle served')
    })
    server.maxConnections = MAX_CONNECTIONS
    server.on('tlsClientError', (err, socket) => {
      refusals.warn(`${socket.remoteAddress ?? 'unknown'} handshake_failed`, { address: socket.remoteAddress, reason: 'handshake_failed', err }, 'federation: bundle endpoint request refused')
      socket.destroy()
    })
    if (profile.kind === 'https_web' && pair !== undefined) stops.push(watchPair(profile, pair, server, logger, options.reloadCheckMs ?? 5_000))
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(options.port, options.host, () => { server.off('error', reject); resolve() })
      })
    } catch (err) {
      for (const stop of stops) stop()
      throw new FederationError('ERR_BUNDLE_ENDPOINT_LISTEN', `cannot serve the bundle endpoint on ${options.host}:${options.port}: ${(err as Error).message}`, { cause: err })
    }
    const endpoint = new BundleEndpointServer(server, stops)
    logger.info({ address: endpoint.address, profile: profile.kind }, 'federation: serving the bundle endpoint')
    return endpoint
  }

  /** host:port it listens on ([v6]:port for IPv6). */
  get address (): string {
    const { address, port } = this.#server.address() as AddressInfo
    return `${address.includes(':') ? `[${address}]` : address}:${port}`
  }

  async stop (): Promise<void> {
    for (const stop of this.#stops) stop()
    const closed = new Promise<void>(resolve => { this.#server.close(() => { resolve() }) })
    this.#server.closeAllConnections()
    await closed
  }
}

/** The https_web pair as it is on disk now; throws ERR_BUNDLE_ENDPOINT_CERT naming the file and why. */
function readPair (certFile: string, keyFile: string): KeyPair {
  const read = (file: string): string => {
    try {
      return readFileSync(file, 'utf8')
    } catch (err) {
      throw new FederationError('ERR_BUNDLE_ENDPOINT_CERT', `cannot read the bundle endpoint's ${file === certFile ? 'certificate' : 'key'} ${file}: ${(err as Error).message}`, { cause: err })
    }
  }
  return { cert: read(certFile), key: read(keyFile), version: fileVersion(certFile, keyFile) }
}

function fileVersion (...files: string[]): string {
  return files.map(file => { try { const s = statSync(file); return `${s.mtimeMs}:${s.size}:${s.ino}` } catch { return 'missing' } }).join('|')
}

/** Checks the files every `everyMs`; a changed pair that loads replaces the served one, one that does not is logged. */
function watchPair (profile: Extract<BundleEndpointProfile, { kind: 'https_web' }>, first: KeyPair, server: Server, logger: Logger, everyMs: number): () => void {
  let served = first.version
  const timer = setInterval(() => {
    const version = fileVersion(profile.certFile, profile.keyFile)
    if (version === served) return
    served = version
    try {
      const pair = readPair(profile.certFile, profile.keyFile)
      server.setSecureContext({ key: pair.key, cert: pair.cert })
      logger.info({ certFile: profile.certFile }, 'federation: bundle endpoint certificate reloaded')
    } catch (err) {
      logger.error({ err, certFile: profile.certFile, keyFile: profile.keyFile }, 'federation: bundle endpoint certificate not reloaded; serving the last good one')
    }
  }, everyMs).unref()
  return () => { clearInterval(timer) }
}
