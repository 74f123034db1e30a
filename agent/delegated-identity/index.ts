/**
 * agent/delegated-identity/ — SPIRE's Delegated Identity API (spire.api.agent.delegatedidentity.v1), served as
 * SPIRE's agent serves it: a trusted delegate — a node-level proxy such as Chaperone's node mode, Cilium or ztunnel —
 * attested by the kernel's word on its connection and named in `authorizedDelegates`, obtains the X509-SVIDs (with
 * their keys), JWT-SVIDs and bundles of other workloads, named by selectors it attested itself or by a PID the agent
 * attests. Served on the admin socket, as SPIRE does, and on a socket of its own (`delegatedIdentitySocket`) that
 * grants nothing else. Beyond SPIRE, a subscription by PID ends when that process does.
 */
export { DelegatedIdentityApi } from './delegated-identity-api'
export type { DelegatedIdentityOptions } from './delegated-identity-api'
