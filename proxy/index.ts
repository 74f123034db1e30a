/**
 * proxy/ — the sidecar: inbound and outbound mutual TLS (TCP and HTTP modes), the policy enforced at both ends,
 * the verified peer ID handed to the app (X-Forwarded-Client-Cert, PROXY protocol v2), rotation without dropping
 * connections, admin endpoints and metrics. Imports spiffe/, policy/ and config/.
 */
export { Sidecar } from './sidecar'
export { loadSidecarConfig } from './config'
export type { SidecarConfig, ListenerConfig, SidecarFlags } from './config'
export { servedPorts } from './served-ports'
