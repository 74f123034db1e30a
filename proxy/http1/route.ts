/**
 * What a listener tells an HTTP connection to do with a request (forward it, answer it, or — the explicit proxy's
 * CONNECT — turn the connection into a tunnel), and what the connection needs from its listener.
 */
import type { Socket } from 'node:net'
import type { PolicyRequest } from '../../policy/engine'
import type { HeadProblem } from './head-problem'
import type { HeadLimits } from './limits'
import type { RequestHead } from './request-head'
import type { Field } from './serialize'
import type { Upstream } from './upstream-pool'

export interface Forward {
  readonly kind: 'forward'
  readonly upstream: Upstream
  /** What the policy allowed: a connection that becomes a tunnel is re-decided on every policy change. */
  readonly request: PolicyRequest
  /** Fields the sidecar sets, written first. */
  readonly first: readonly Field[]
  /** The client's fields (and trailer fields) to remove besides the hop-by-hop ones. */
  readonly drop: (lower: string) => boolean
  /** Host for a request that came without one (HTTP/1.0). */
  readonly defaultHost: string
  /** A new connection to the same destination, to send the request again when a reused one closed unanswered. */
  readonly reconnect: (done: (upstream: Upstream | Error) => void) => void
}

/** A request answered by the sidecar itself (denied, malformed, not routable, not ready). */
export interface Refusal {
  readonly kind: 'refusal'
  readonly status: number
  readonly body: object
}

/** CONNECT through the explicit proxy: the connection becomes a tunnel to `upstream`, allowed as `request`. */
export interface Tunnel {
  readonly kind: 'tunnel'
  readonly upstream: Upstream
  readonly request: PolicyRequest
}

export type RouteResult = Forward | Refusal | Tunnel

export function refusal (status: number, error: string, extra: object = {}): Refusal {
  return { kind: 'refusal', status, body: { error, ...extra } }
}

/** The sidecar has no SVID yet: the same answer on every listener. */
export const NOT_READY: Refusal = Object.freeze(refusal(503, 'not ready: no SVID from the Workload API yet'))

export interface HttpSettings {
  readonly idleTimeoutMs: number
  /** How long a request head may take, from the connection's start (first request) or from its first byte. */
  readonly headTimeoutMs: number
  readonly limits: HeadLimits
  /** Protocols a client may upgrade to (`Upgrade`), lowercased; others are removed from the request. */
  readonly upgrades: ReadonlySet<string>
}

export interface HttpConnectionHooks<C> {
  readonly settings: HttpSettings
  /** Decides the request and picks its upstream connection; may answer later (a connection being opened). */
  readonly route: (head: RequestHead, context: C, done: (result: RouteResult) => void) => void
  /** `keepAliveMs`: how long the server said it keeps the connection when idle. */
  readonly release: (upstream: Upstream, reusable: boolean, keepAliveMs?: number) => void
  /** Each response's status and the request's duration in ms. */
  readonly observe: (status: number, ms: number) => void
  readonly tunnel: (request: PolicyRequest, client: Socket, upstream: Socket) => void
  /** A request refused at a limit (counted and logged by the listener). */
  readonly limited: (limit: NonNullable<HeadProblem['limit']>, context: C, remote: string | undefined) => void
}
