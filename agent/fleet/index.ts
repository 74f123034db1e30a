/**
 * agent/fleet/ — the upstream role: devices attest to this agent on a TCP port as they would to a SPIRE server and
 * nest under its CA. `FleetServer` is the port: TLS with the server's X509-SVID (`spiffe://<td>/spire/server`),
 * x509pop attestation (`X509popVerifier`, SPIRE's checks and messages), and the calls a device makes after it
 * (GetAuthorizedEntries, BatchNewX509SVID, NewDownstreamX509CA, GetBundle, PublishJWTAuthority), each authorized as
 * SPIRE authorizes them; `startFleetFromConfig` starts it from the agent's `fleet:` settings. For operators (the
 * admin API, `chaperone fleet …`): `registerDevice` writes a device's entries, `fleetDevices` lists the fleet.
 */
export { FleetServer } from './fleet-server'
export type { FleetServerOptions, FleetStatus } from './fleet-server'
export { startFleetFromConfig } from './fleet-from-config'
export { canonicalX509popSelector, registerDevice } from './device-registration'
export type { DeviceRegistration, RegisteredDevice } from './device-registration'
export { fleetDevice, fleetDevices } from './fleet-devices'
export type { FleetDevice, FleetDevices } from './fleet-devices'
export { X509popVerifier } from './x509pop-verifier'
export type { X509popVerifierOptions, X509popResult } from './x509pop-verifier'
export { FleetError, X509popRefusal } from './errors'
export type { FleetErrorCode } from './errors'
