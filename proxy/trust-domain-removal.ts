/**
 * Federation ended: when a trust domain's bundle leaves the bundle set (the operator removed the federation
 * relationship, so the Workload API no longer sends it), its peers can no longer be verified, and the established
 * connections with them are closed, in every listener and mode. A bundle that only changes (a rotation: the trust
 * domain is still there) closes nothing, as rotation never breaks established connections.
 */
import type { Server } from 'node:net'
import type { BundleSet } from '../spiffe/bundle-set'
import type { SpiffeId } from '../spiffe/id'
import { isDrainable } from './http1/connections'
import type { SidecarServices } from './services'
import { peerOf } from './tracker'

/** A listener's server by the listener's name. */
export interface NamedServer { readonly name: string, readonly server: Server }

/** The trust domains `before` has a bundle for and `after` has none for. */
export function removedTrustDomains (before: BundleSet, after: BundleSet): string[] {
  const kept = new Set([...after].map(bundle => bundle.trustDomain.name))
  return [...before].map(bundle => bundle.trustDomain.name).filter(name => !kept.has(name))
}

/** On every identity change, closes the connections with peers of the trust domains whose bundles left. */
export function closeOnTrustDomainRemoval (services: SidecarServices, servers: readonly NamedServer[]): void {
  let bundles = services.identity.current?.context.bundles
  services.identity.on('change', state => {
    const before = bundles
    bundles = state.context.bundles
    if (before === undefined) return
    for (const trustDomain of removedTrustDomains(before, bundles)) closeTrustDomain(services, servers, trustDomain)
  })
}

/** Closes, counts and logs the connections with peers of `trustDomain`. */
function closeTrustDomain (services: SidecarServices, servers: readonly NamedServer[], trustDomain: string): void {
  const gone = (peer: SpiffeId | string): boolean => typeof peer !== 'string' && peer.memberOf(trustDomain)
  const closed = new Map<string, number>()
  const count = (listener: string, n: number): void => { closed.set(listener, (closed.get(listener) ?? 0) + n) }
  // The tracker first: an upgraded HTTP connection is tracked there too, and once closed is not counted again.
  for (const connection of services.tracker.closeWhere(connection => gone(peerOf(connection)))) count(connection.listener, 1)
  for (const { name, server } of servers) if (isDrainable(server)) count(name, server.closePeerConnections(gone))
  let total = 0
  for (const [listener, n] of closed) {
    if (n > 0) services.metrics.closed.inc({ listener, reason: 'trust_domain_removed' }, n)
    total += n
  }
  services.logger.warn({ event: 'trust_domain_removed', trustDomain, closedConnections: total }, 'a trust domain left the bundle set: connections with its peers closed')
}
