/**
 * The sidecar's metrics (prom-client). Metric and label names are public API: dashboards depend on them.
 * Bytes are counted from the sockets' own counters when a connection closes, so the data path does no per-chunk work.
 */
import { Counter, Gauge, Registry } from 'prom-client'
import { DecisionCounts } from './decision-counts'
import { RequestDurations } from './request-durations'

export class SidecarMetrics {
  readonly registry = new Registry()
  /** Counted by `countDecision`, added to `connections` when it is read. */
  readonly #decisions = new DecisionCounts()
  readonly connections = new Counter({
    name: 'chaperone_connections_total',
    help: 'Connections (and HTTP requests in HTTP mode) decided, by listener, direction, decision (allow|deny) and deciding rule',
    labelNames: ['listener', 'direction', 'decision', 'rule'],
    registers: [this.registry],
    collect: () => { this.#decisions.addTo(this.connections) }
  })

  readonly refused = new Counter({
    name: 'chaperone_connections_refused_total',
    help: 'Connections or requests refused at a limit, by listener and reason (max_connections, max_connections_per_peer, max_handshakes_per_address, no_allow_rule, head_timeout, too_many_headers, head_too_large)',
    labelNames: ['listener', 'reason'],
    registers: [this.registry]
  })

  readonly closed = new Counter({
    name: 'chaperone_connections_closed_total',
    help: 'Established connections the sidecar closed, by listener and reason (policy: the new policy denies them; trust_domain_removed: their peer\'s trust domain left the bundle set)',
    labelNames: ['listener', 'reason'],
    registers: [this.registry]
  })

  readonly active = new Gauge({ name: 'chaperone_active_connections', help: 'Open connections, by listener', labelNames: ['listener'], registers: [this.registry] })
  readonly handshakeFailures = new Counter({
    name: 'chaperone_handshake_failures_total',
    help: 'TLS handshakes or peer verifications that failed, by listener and reason (an error code, e.g. ERR_X509_SVID_UNTRUSTED)',
    labelNames: ['listener', 'reason'],
    registers: [this.registry]
  })

  readonly bytes = new Counter({
    name: 'chaperone_bytes_total',
    help: 'Bytes forwarded, by listener and direction (rx: from the client, tx: to the client)',
    labelNames: ['listener', 'direction'],
    registers: [this.registry]
  })

  readonly httpDuration = new RequestDurations('chaperone_http_request_duration_seconds',
    'HTTP request durations in HTTP mode, by listener and status code',
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])

  readonly svidExpiry = new Gauge({ name: 'chaperone_svid_expiry_timestamp_seconds', help: 'When the current X509-SVID expires (Unix time)', registers: [this.registry] })

  constructor () {
    this.registry.registerMetric(this.httpDuration.metric)
  }

  /** A policy decision (per connection, or per request in HTTP mode), in chaperone_connections_total. */
  countDecision (listener: string, direction: string, allow: boolean, rule: string): void {
    this.#decisions.count(listener, direction, allow, rule)
  }
}
