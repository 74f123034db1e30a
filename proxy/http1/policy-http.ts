/** What the HTTP listeners share: reading a request for the policy, and (explicit proxy) answering and timing. */
import type { ServerResponse } from 'node:http'
import { performance } from 'node:perf_hooks'
import { normalizeRequestPath } from '../../policy/http-path'
import type { ListenerConfig } from '../config'
import type { SidecarServices } from '../services'

/** The method and normalized path the policy decides on, from a request's method and target, or why the request is refused. */
export function policyHttpOf (method: string, target: string): { method: string, path: string } | { problem: string } {
  const normalized = normalizeRequestPath(requestPath(target))
  return 'problem' in normalized ? normalized : { method, path: normalized.path }
}

/** The path of an origin-form (`/a?b`) or absolute-form (`http://host/a?b`) request target. */
function requestPath (url: string): string {
  if (url.startsWith('/')) return url
  const match = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*(.*)$/i.exec(url)
  return match === null ? url : (match[1].startsWith('/') ? match[1] : `/${match[1]}`)
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
