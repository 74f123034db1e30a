/**
 * agent/upstream/ — the device role towards a fleet's SPIRE server: proving who the device is and obtaining its agent
 * X509-SVID, as SPIRE's own agent does. `attestAgent` checks the server (`spiffe://<td>/spire/server` under the trust
 * bundle), makes a fresh key and CSR and runs AttestAgent; `x509popAttestor` proves the device's birth certificate
 * (x509pop: the chain as payload, a signature over the server's nonce, exactly as SPIRE verifies it). With the agent
 * SVID, `obtainDeviceCa` finds the device's `downstream` entry among those authorized to the agent, gets that entry's
 * X509-SVID (BatchNewX509SVID) and, as that entry, the device CA (NewDownstreamX509CA), each answer checked;
 * `fetchUpstreamBundle` reads the trust domain's bundle (GetBundle); `publishJwtAuthority` publishes the device's JWT key.
 * `DeviceUpstream` is all of it as the CA's remote upstream (renewing the device's SVIDs at half-life), and
 * `BundlePoll` keeps the CA's copy of the bundle current.
 */
export { attestAgent } from './attest-agent'
export type { AttestAgentOptions } from './attest-agent'
export type { AgentSvid } from './agent-svid'
export { UpstreamError } from './errors'
export type { UpstreamErrorCode } from './errors'
export type { NodeAttestor } from './node-attestor'
export { spireServerId, upstreamServer } from './server-trust'
export type { UpstreamServer } from './server-trust'
export { birthCredential, birthCredentialFromPem, x509popAgentId, x509popFingerprint } from './x509pop-credential'
export type { BirthCredential } from './x509pop-credential'
export { X509POP, x509popAttestor } from './x509pop-attestor'
export { obtainDeviceCa } from './obtain-device-ca'
export type { DeviceEnrolment } from './obtain-device-ca'
export { fetchAuthorizedEntries } from './authorized-entries'
export type { AuthorizedEntry } from './authorized-entries'
export { chooseDownstreamEntry } from './downstream-entry'
export { newEntrySvid } from './entry-svid'
export type { EntrySvid } from './entry-svid'
export { newDeviceCa } from './device-ca'
export type { DeviceCaOptions } from './device-ca'
export { acceptDeviceCa } from './device-ca-check'
export type { DeviceCa, DownstreamCaMessage } from './device-ca-check'
export { bundleFromMessage, fetchUpstreamBundle } from './upstream-bundle'
export type { UpstreamBundleOptions } from './upstream-bundle'
export type { ClientSvid } from './upstream-client'
export { publishJwtAuthority } from './publish-jwt-authority'
export type { JwtAuthority } from './publish-jwt-authority'
export { DeviceUpstream } from './device-upstream'
export type { DeviceUpstreamOptions } from './device-upstream'
export { deviceUpstreamFromConfig } from './device-from-config'
export { BundlePoll } from './bundle-poll'
