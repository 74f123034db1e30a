/**
 * The agent's metrics (prom-client), read from its parts when scraped, so nothing on the agent's paths counts
 * anything for them. Metric and label names are public API: dashboards and alerts depend on them.
 * - the CA: until when it can issue (`chaperone_agent_ca_issues_until_timestamp_seconds`: under an upstream, the
 *   offline budget; alert on it getting close);
 * - the device role: whether the upstream answers, and when it last did;
 * - the upstream role (`fleet:`): attested devices, and refusals by reason (attestations and calls);
 * - federation: per relationship (label trust_domain), the bundle's sequence, the last successful fetch, the next
 *   one, failures in a row and by reason.
 */
import { Counter, Gauge, Registry } from 'prom-client'
import type { AgentCa } from '../ca'
import type { FleetServer } from '../fleet/fleet-server'
import type { RegistrationStore } from '../store'
import type { BundlePoll } from '../upstream/bundle-poll'
import type { Federation, RelationshipStatus } from '../federation/federation'

export interface AgentMetricsSources {
  readonly ca: Pick<AgentCa, 'status'>
  readonly store: Pick<RegistrationStore, 'agents'>
  /** The device role's poll of the upstream's bundle, when the agent has `upstream:`. */
  readonly bundlePoll?: Pick<BundlePoll, 'lastContact' | 'lostSince'>
  /** The upstream role's port, when the agent has `fleet:`. */
  readonly fleet?: Pick<FleetServer, 'status'>
  /** The federation relationships' fetchers. */
  readonly federation?: Pick<Federation, 'status'>
}

const seconds = (date: Date): number => Math.floor(date.getTime() / 1000)

export class AgentMetrics {
  readonly registry = new Registry()

  constructor (sources: AgentMetricsSources) {
    const registers = [this.registry]
    const { ca, store, bundlePoll, fleet, federation } = sources
    new Gauge({
      name: 'chaperone_agent_ca_issues_until_timestamp_seconds',
      help: 'The latest NotAfter of the active and prepared X.509 authorities (Unix time): SVIDs are issued until then, whatever happens to an upstream',
      registers,
      collect () { this.set(seconds(ca.status().issuesUntil)) }
    })
    if (bundlePoll !== undefined) {
      new Gauge({
        name: 'chaperone_agent_upstream_up',
        help: 'Whether the upstream (the fleet\'s SPIRE server or Chaperone agent) answered the last bundle poll (1) or not (0)',
        registers,
        collect () { this.set(bundlePoll.lastContact !== undefined && bundlePoll.lostSince === undefined ? 1 : 0) }
      })
      new Gauge({
        name: 'chaperone_agent_upstream_last_contact_timestamp_seconds',
        help: 'When the upstream last answered a bundle poll (Unix time; 0 before the first answer)',
        registers,
        collect () { this.set(bundlePoll.lastContact === undefined ? 0 : seconds(bundlePoll.lastContact)) }
      })
    }
    if (fleet !== undefined) {
      new Gauge({
        name: 'chaperone_fleet_attested_agents',
        help: 'Agents (devices) attested to this agent, by state (active|banned)',
        labelNames: ['state'],
        registers,
        collect () {
          const agents = store.agents.list()
          const banned = agents.filter(agent => agent.banned).length
          this.set({ state: 'active' }, agents.length - banned)
          this.set({ state: 'banned' }, banned)
        }
      })
      refusalCounter('chaperone_fleet_attestations_refused_total', 'Attestations refused on the fleet port, by reason', registers, () => fleet.status().attestationsRefused)
      refusalCounter('chaperone_fleet_calls_refused_total', 'Calls refused on the fleet port, by reason', registers, () => fleet.status().callsRefused)
    }
    if (federation !== undefined) federationMetrics(federation, registers)
  }
}

/** A gauge per relationship, read from its status when scraped. */
function federationMetrics (federation: Pick<Federation, 'status'>, registers: Registry[]): void {
  const perRelationship = (name: string, help: string, value: (status: RelationshipStatus) => number): void => {
    new Gauge({
      name,
      help,
      labelNames: ['trust_domain'],
      registers,
      collect () {
        this.reset()
        for (const status of federation.status()) this.set({ trust_domain: status.relationship.trustDomain.name }, value(status))
      }
    })
  }
  const time = (date: Date | undefined): number => date === undefined ? 0 : seconds(date)
  perRelationship('chaperone_agent_federation_bundle_sequence', 'The spiffe_sequence of the bundle held for the trust domain (0: none, or a bundle without one)',
    s => s.bundle?.bundle.sequence ?? 0)
  perRelationship('chaperone_agent_federation_last_success_timestamp_seconds', 'When a fetch of the trust domain\'s bundle last succeeded (Unix time; 0: not since the agent started)',
    s => time(s.fetch.lastSuccessAt))
  perRelationship('chaperone_agent_federation_next_refresh_timestamp_seconds', 'When the trust domain\'s bundle is fetched next (Unix time)', s => time(s.fetch.nextRefreshAt))
  perRelationship('chaperone_agent_federation_consecutive_failures', 'Fetches of the trust domain\'s bundle that failed since the last success', s => s.fetch.consecutiveFailures)
  new Counter({
    name: 'chaperone_agent_federation_fetch_failures_total',
    help: 'Failed fetches of a trust domain\'s bundle, by reason (connect, timeout, tls, endpoint_id, no_endpoint_bundle, status, too_large, invalid_bundle)',
    labelNames: ['trust_domain', 'reason'],
    registers,
    collect () {
      this.reset()
      for (const { relationship, fetch } of federation.status()) {
        for (const [reason, count] of Object.entries(fetch.failures)) this.inc({ trust_domain: relationship.trustDomain.name, reason }, count)
      }
    }
  })
}

/** A counter by reason whose values are read, when scraped, from counts kept elsewhere. */
function refusalCounter (name: string, help: string, registers: Registry[], counts: () => Readonly<Record<string, number>>): void {
  new Counter({
    name,
    help,
    labelNames: ['reason'],
    registers,
    collect () {
      this.reset()
      for (const [reason, count] of Object.entries(counts())) this.inc({ reason }, count)
    }
  })
}
