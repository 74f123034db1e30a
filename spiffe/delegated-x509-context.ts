/**
 * A delegated workload's X509Context, assembled from what the Delegated Identity API sends on two streams: the
 * workload's SVIDs with the trust domains it federates with, and every trust domain's bundles (shared by all the
 * workloads of a node). The context's bundles are the chosen SVID's own trust domain's plus the federated ones the
 * workload's entries name, never the agent's whole set: a workload trusts only what its entries say.
 */
import { BundleSet } from './bundle-set'
import type { DelegatedX509SvidUpdate } from './delegated-identity-messages'
import { parseSpiffeId } from './id'
import type { X509BundleMap } from './shared-x509-bundles'
import { SourceError } from './source-errors'
import { SpiffeBundle } from './spiffe-bundle'
import type { X509Svid } from './workload-messages'
import { makeX509Context } from './x509-context'
import type { X509Context } from './x509-context'

/**
 * The context of `update` (with at least one SVID) given the agent's `bundles`, or why there is none: an SVID of a
 * trust domain without a bundle (ERR_X509_SOURCE_NO_BUNDLE), or none that `pick` chose (ERR_X509_SOURCE_NO_SVID).
 * `where` names the agent and the workload for those messages.
 */
export function assembleDelegatedX509Context (update: DelegatedX509SvidUpdate, bundles: X509BundleMap, pick: (svids: X509Svid[]) => X509Svid | undefined,
  where: string): X509Context | SourceError {
  const svids: X509Svid[] = []
  for (const svid of update.svids) {
    const trustDomain = parseSpiffeId(svid.spiffeId).trustDomain
    const bundle = bundles.get(trustDomain.name)
    if (bundle === undefined) {
      const known = [...bundles.keys()].join(', ')
      return new SourceError('ERR_X509_SOURCE_NO_BUNDLE',
        `${where} issued ${svid.spiffeId}, but the agent's bundles hold none for its trust domain ${trustDomain.name} (they hold: ${known === '' ? 'none' : known})`)
    }
    svids.push({ ...svid, bundle })
  }
  const svid = pick(svids)
  if (svid === undefined) {
    return new SourceError('ERR_X509_SOURCE_NO_SVID', `${where} issued ${svids.map(s => s.spiffeId).join(', ')}, but pick chose none of them`)
  }
  const trusted = new BundleSet([new SpiffeBundle(svid.bundle.trustDomain, { x509: svid.bundle })])
  for (const name of update.federatesWith) {
    const bundle = bundles.get(name)
    // SPIRE names only trust domains it has a bundle for: one missing here is on its way on the bundle stream.
    if (bundle !== undefined && !trusted.has(bundle.trustDomain)) trusted.set(new SpiffeBundle(bundle.trustDomain, { x509: bundle }))
  }
  return makeX509Context(svid, svids, trusted)
}
