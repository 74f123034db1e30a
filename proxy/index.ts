/**
 * proxy/ — the sidecar: takes its SVID from any Workload API, terminates and originates mutual TLS, enforces the
 * policy inbound and outbound, hands the verified peer ID to the app, rotates without dropping connections, and
 * serves its admin endpoints. May import spiffe/ and policy/; never agent/. Arrives with the sidecar issue.
 */
export {}
