/**
 * Which federated bundles a workload gets (SPIRE's rule, spire-compat.md §4): those of every trust domain named in
 * the federatesWith of the entries it is issued SVIDs for, as far as the agent holds a bundle for them. A trust
 * domain an entry names before its bundle is set is served from the moment the bundle is set.
 */
import type { SpiffeBundle } from '../../spiffe/spiffe-bundle'
import type { RegistrationEntry, RegistrationStore } from '../store'

/** The trust domain names the entries federate with: the union, each once, sorted. */
export function federatedTrustDomains (entries: readonly RegistrationEntry[]): string[] {
  return [...new Set(entries.flatMap(entry => entry.federatesWith))].sort()
}

/** The bundles the agent holds for the trust domains the entries federate with, in trust domain order. */
export function federatedBundlesOf (store: Pick<RegistrationStore, 'findFederatedBundle'>, entries: readonly RegistrationEntry[]): SpiffeBundle[] {
  return federatedTrustDomains(entries).flatMap(name => store.findFederatedBundle(name)?.bundle ?? [])
}
