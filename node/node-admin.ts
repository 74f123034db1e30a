/**
 * The node proxy's admin listener (in its own namespace; default 127.0.0.1:15000): `/live`; `/ready` (every app
 * of the configuration served, each with an SVID that has not expired, a bundle and its listeners bound);
 * `/status` (JSON: each app's state, ID, process and what it is missing, and the policy); `/metrics` (every app's
 * metrics labelled app="<name>", and the policy's).
 */
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { Registry } from 'prom-client'
import type { PolicyWatcher } from '../policy/watch'
import { adminJson as json } from '../proxy'
import type { AppStatus } from './adopted-app'
import { mergedMetricsText } from './merged-metrics'

export interface NodeAdminView {
  apps: () => readonly AppStatus[]
  registries: () => readonly Registry[]
  readonly policy: PolicyWatcher
}

export function nodeAdminServer (view: NodeAdminView): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (req.method !== 'GET' && req.method !== 'HEAD') json(res, 405, { error: 'only GET' })
    else if (path === '/live') json(res, 200, { live: true })
    else if (path === '/ready') {
      const waiting = view.apps().filter(app => app.missing.length > 0).map(app => ({ app: app.name, missing: app.missing }))
      json(res, waiting.length === 0 ? 200 : 503, waiting.length === 0 ? { ready: true } : { ready: false, apps: waiting })
    } else if (path === '/status') {
      const policy = view.policy.policy
      json(res, 200, { apps: view.apps().map(app => ({ ...app, ready: app.missing.length === 0 })), policy: { file: policy.source, hash: policy.hash, rules: policy.document.rules.length } })
    } else if (path === '/metrics') {
      mergedMetricsText(view.registries()).then(text => {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(text)
      }, (err: Error) => { json(res, 500, { error: err.message }) })
    } else json(res, 404, { error: 'not found', paths: ['/live', '/ready', '/metrics', '/status'] })
  })
}
