/**
 * agent/upstream/ — the device role towards a fleet's SPIRE server: proving who the device is and obtaining its agent
 * X509-SVID, as SPIRE's own agent does. `attestAgent` checks the server (`spiffe://<td>/spire/server` under the trust
 * bundle), makes a fresh key and CSR and runs AttestAgent; `x509popAttestor` proves the device's birth certificate
 * (x509pop: the chain as payload, a signature over the server's nonce, exactly as SPIRE verifies it). Everything a
 * device needs before it can ask for its CA (NewDownstreamX509CA), which comes next.
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
