/**
 * agent/ca/ — the agent's certificate authority: it mints X509-SVIDs and JWT-SVIDs for the trust domain, publishes
 * the trust domain's bundle, rotates its signing authorities and JWT keys on SPIRE's schedule, and keeps its state
 * (private keys 0600) in the agent's data directory. It runs as its own root, as an intermediate of an operator's
 * upstream CA (files), or as a device CA of a remote upstream (the fleet's SPIRE server, remote-upstream.ts). In the
 * upstream role it also signs, from their CSRs, the CAs of downstream servers as SPIRE's NewDownstreamX509CA does
 * (downstream-ca.ts). Signing uses Node's native WebCrypto through @peculiar/x509; JWTs are signed with jose.
 */
export { AgentCa } from './agent-ca'
export type { AgentCaOptions } from './ca-options'
export type { CaStatus, AuthorityStatus, JwtKeyStatus } from './ca-view'
export type { X509SvidRequest, X509SvidResult } from './svid-issuer'
export type { DownstreamCa } from './downstream-ca'
export type { JwtSvidRequest } from './jwt-issuer'
export type { KeyType } from './keys'
export type { UpstreamFiles } from './upstream'
export type { PublishedJwtKey, RemoteUpstream, SignedAuthority } from './remote-upstream'
export { CaError } from './errors'
export type { CaErrorCode } from './errors'
export type { KeyState } from './rotation'
