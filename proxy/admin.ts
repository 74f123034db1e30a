/**
 * The admin listener (default 127.0.0.1:15000): `/live` (the process answers), `/ready` (an SVID that has not expired,
 * a bundle and the policy loaded, listeners bound: what `chaperone proxy wait` polls), `/metrics` (Prometheus text),
 * `/status` (JSON).
 */
import { createServer } from 'node:http'
import type { Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { formatProblem } from '../policy'
import type { ListenerConfig } from './config'
import type { SidecarServices } from './services'
import { svidHasExpired } from './svid-expiry'

export interface ListenerStatus { readonly config: ListenerConfig, readonly bound: AddressInfo | undefined }

/** A JSON answer of the admin endpoints (the sidecar's and the node proxy's). */
export function json (res: ServerResponse, status: number, body: object): void {
  const text = `${JSON.stringify(body, null, 2)}\n`
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text)
}

/** What is missing before the sidecar can serve; empty when ready. */
export function notReady (services: SidecarServices, listeners: () => readonly ListenerStatus[]): string[] {
  const missing: string[] = []
  const state = services.identity.current
  if (state === undefined) missing.push('no SVID from the Workload API yet')
  else {
    const { spiffeId, notAfter, bundles } = state.context
    // Every peer refuses an expired SVID: taking traffic now would only fail handshakes.
    if (svidHasExpired(notAfter)) {
      missing.push(`the SVID ${spiffeId.toString()} expired at ${notAfter.toISOString()}; the Workload API at ${services.identity.source.address} has not sent a new one`)
    }
    if (bundles.size === 0) missing.push('no trust bundle yet')
  }
  for (const listener of listeners()) if (listener.bound === undefined) missing.push(`listener ${listener.config.name} is not bound`)
  return missing
}

export function adminServer (services: SidecarServices, listeners: () => readonly ListenerStatus[]): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      json(res, 405, { error: 'only GET' })
    } else if (path === '/live') {
      json(res, 200, { live: true })
    } else if (path === '/ready') {
      const missing = notReady(services, listeners)
      json(res, missing.length === 0 ? 200 : 503, missing.length === 0 ? { ready: true } : { ready: false, missing })
    } else if (path === '/metrics') {
      services.metrics.registry.metrics().then(text => {
        res.writeHead(200, { 'content-type': services.metrics.registry.contentType }).end(text)
      }, (err: Error) => { json(res, 500, { error: err.message }) })
    } else if (path === '/status') {
      json(res, 200, status(services, listeners()))
    } else {
      json(res, 404, { error: 'not found', paths: ['/live', '/ready', '/metrics', '/status'] })
    }
  })
}

/** The last reload of the policy file: when, why, its result, and for a rejected one each problem (file:line:column). */
function lastReload (services: SidecarServices): object | null {
  const last = services.policy.lastReload
  if (last === undefined) return null
  return {
    at: last.at.toISOString(),
    trigger: last.trigger,
    result: last.result,
    ...(last.problems === undefined ? {} : { problems: last.problems.map(problem => formatProblem(problem, services.policy.file)) })
  }
}

function status (services: SidecarServices, listeners: readonly ListenerStatus[]): object {
  const context = services.identity.current?.context
  const policy = services.policy.policy
  return {
    spiffeId: context?.spiffeId.toString() ?? null,
    svidExpiry: context?.notAfter.toISOString() ?? null,
    svidExpired: context === undefined ? null : svidHasExpired(context.notAfter),
    trustDomains: context === undefined ? [] : [...context.bundles].map(bundle => bundle.trustDomain.name),
    policy: { file: policy.source, hash: policy.hash, rules: policy.document.rules.length, defaultAction: policy.document.defaultAction, lastReload: lastReload(services) },
    activeConnections: services.tracker.size,
    listeners: listeners.map(({ config, bound }) => ({
      name: config.name,
      direction: config.direction,
      protocol: config.protocol,
      listen: bound === undefined ? null : `${bound.address}:${bound.port}`,
      target: { fixed: `${config.target.host}:${config.target.port}`, 'http-proxy': '(per request)', transparent: '(original destination)' }[config.kind],
      ...(config.expect === undefined ? {} : { expect: config.expect })
    }))
  }
}
