/** What inbound and outbound HTTP listeners share: reading a request for the policy, answering, timing. */
import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type ProxyServer from 'http-proxy'
import { performance } from 'node:perf_hooks'
import { normalizeRequestPath } from '../policy/http-path'
import type { HostPort, ListenerConfig } from './config'
import type { SidecarServices } from './services'

/** The method and normalized path the policy decides on, or why the request is refused. */
export function httpRequestOf (req: IncomingMessage): { method: string, path: string } | { problem: string } {
  const normalized = normalizeRequestPath(requestPath(req.url ?? ''))
  return 'problem' in normalized ? normalized : { method: req.method ?? 'GET', path: normalized.path }
}

/** `http://host:port` of a target (IPv6 in brackets). */
export function httpUrl (target: HostPort): string {
  return `http://${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}`
}

/** The path of an origin-form (`/a?b`) or absolute-form (`http://host/a?b`) request target. */
function requestPath (url: string): string {
  if (url.startsWith('/')) return url
  const match = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*(.*)$/i.exec(url)
  return match === null ? url : (match[1].startsWith('/') ? match[1] : `/${match[1]}`)
}

/**
 * http-proxy pipes an upgraded connection's two sockets, and a pipe does not pass on `destroy()`: when either side
 * is destroyed (a policy reload, a drain), the other must be too.
 */
export function closeUpgradesTogether (proxy: ProxyServer): void {
  proxy.on('proxyReqWs', (proxyReq: ClientRequest, _req: IncomingMessage, socket: Duplex) => {
    proxyReq.on('upgrade', (_res: IncomingMessage, upstream: Socket) => {
      socket.once('close', () => { upstream.destroy() })
      upstream.once('close', () => { socket.destroy() })
    })
  })
}

export function answer (res: ServerResponse, status: number, body: object): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const text = `${JSON.stringify(body)}\n`
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text)
}

export function observeDuration (services: SidecarServices, listener: ListenerConfig, res: ServerResponse): void {
  const started = performance.now()
  res.once('finish', () => {
    services.metrics.httpDuration.observe({ listener: listener.name, code: String(res.statusCode) }, (performance.now() - started) / 1000)
  })
}
