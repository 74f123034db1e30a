/**
 * proxy/ — the sidecar: inbound and outbound mutual TLS (TCP and HTTP modes), the policy enforced at both ends,
 * the verified peer ID handed to the app (X-Forwarded-Client-Cert, PROXY protocol v2), rotation without dropping
 * connections, admin endpoints and metrics. Imports spiffe/, policy/ and config/.
 */
export { Sidecar } from './sidecar'
export { loadSidecarConfig } from './config'
export type { SidecarConfig, ListenerConfig, SidecarFlags } from './config'
export { servedPorts } from './served-ports'
// For node mode (node/), which serves many apps' namespaces with these same parts.
export { IptablesError, iptablesIn, must, mustReplace, install as installRedirect, cleanup as cleanupRedirect } from './listeners/iptables'
export type { IptablesOptions, Run } from './listeners/iptables'
export { tunnelInboundListener } from './listeners/tunnel-inbound'
export type { Dialer, DialPurpose } from './dial'
export { inboundAtPort, transparentInboundListener, transparentOutboundListener } from './listeners/transparent'
export type { SameDeviceApp } from './listeners/same-device'
export type { VerifiedPeer } from './steps/verify-peer'
export { SidecarIdentity } from './identity'
export type { IdentityState } from './identity'
export { SidecarMetrics } from './metrics'
export { ConnectionTracker } from './tracker'
export { PeerChains } from './steps/peer-chains'
export { json as adminJson, notReady } from './admin'
export { serveIdentity, stopServing } from './serving'
export type { SidecarServices } from './services'
export { LIMITS, PROCESS, UPGRADES } from './config-schema'
export type { LimitsFile } from './config-schema'
export { checkServices, limitsOf } from './config'
export type { ProxyLimits } from './config'
export { parseHostPort } from './host-port'
export type { HostPort } from './host-port'
