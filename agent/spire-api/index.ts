/**
 * agent/spire-api/ — SPIRE's server API, served by the agent on a SPIRE-compatible Unix socket over its registration
 * store, so that SPIRE's tools (`spire-server entry …`, `spire-server healthcheck`) and orchestrators written for
 * SPIRE's server register apps with Chaperone unchanged: the Entry service, as SPIRE serves it (its filters, paging,
 * masks, per-item batch results, codes and messages), the Bundle service (our bundle: the CA's
 * authorities and appended ones; federated bundles), the Agent service (this node's agent, whose ID entries are
 * parented on, then the devices attested to it in the upstream role, which may be banned and evicted), the
 * TrustDomain service (the store's federation relationships, those of the config file included; RefreshBundle
 * through the agent's federation) and the standard health service, each call authorized as SPIRE authorizes local
 * and admin callers (authorization.ts). Our own .proto files (proto/) carry the wire names and numbers of SPIRE's published API.
 */
export { SpireServerApi } from './server'
export type { SpireServerApiOptions } from './server'
export type { BundleRefresher } from './trust-domain-service'
