/**
 * The agent's Prometheus endpoint: `GET /metrics` on a plain-HTTP TCP port (`metrics:` in the agent's config, off
 * without it). It serves nothing else and accepts no body; it is bounded like every listener of ours: heads and
 * requests must arrive within 10 s, at most 64 connections are open, an idle one closes after 5 s.
 */
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import { AgentError } from '../errors'

export interface MetricsServerOptions {
  readonly host: string
  readonly port: number
  readonly registry: Registry
  readonly logger: Logger
}

const MAX_CONNECTIONS = 64
const REQUEST_TIMEOUT_MS = 10_000
const KEEP_ALIVE_MS = 5_000

export class MetricsServer {
  readonly #server: Server

  private constructor (server: Server) {
    this.#server = server
  }

  static async start (options: MetricsServerOptions): Promise<MetricsServer> {
    const { registry, logger } = options
    const server = createServer({ requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS, keepAliveTimeout: KEEP_ALIVE_MS, maxHeaderSize: 8192 }, (req, res) => {
      const path = (req.url ?? '').split('?')[0]
      if (path !== '/metrics') {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'not found', paths: ['/metrics'] }))
        return
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'application/json' }).end(JSON.stringify({ error: 'method not allowed' }))
        return
      }
      registry.metrics().then(text => {
        res.writeHead(200, { 'content-type': registry.contentType }).end(req.method === 'HEAD' ? undefined : text)
      }, (err: unknown) => {
        logger.error({ err }, 'metrics: could not collect')
        res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'could not collect metrics; see the agent\'s log' }))
      })
    })
    server.maxConnections = MAX_CONNECTIONS
    await new Promise<void>((resolve, reject) => {
      const failed = (err: Error): void => {
        reject(new AgentError('ERR_METRICS_LISTEN', `cannot serve metrics on ${options.host}:${options.port}: ${err.message}`, { cause: err }))
      }
      server.once('error', failed)
      server.listen(options.port, options.host, () => {
        server.off('error', failed)
        resolve()
      })
    })
    server.on('error', err => { logger.error({ err }, 'metrics: listener error') })
    const metrics = new MetricsServer(server)
    logger.info({ address: metrics.address }, 'metrics: serving /metrics')
    return metrics
  }

  /** host:port it listens on ([v6]:port for IPv6). */
  get address (): string {
    const { address, port } = this.#server.address() as AddressInfo
    return `${address.includes(':') ? `[${address}]` : address}:${port}`
  }

  async stop (): Promise<void> {
    const closed = new Promise<void>(resolve => { this.#server.close(() => { resolve() }) })
    this.#server.closeAllConnections()
    await closed
  }
}
