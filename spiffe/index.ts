/**
 * spiffe/ — the SPIFFE primitives everything else stands on: IDs and trust domains, X.509 and JWT bundles and the
 * SPIFFE bundle format, X509-SVID and JWT-SVID verification, and the TLS peer checks built on them.
 * It imports nothing else of ours, so platform services can use it as a library on its own.
 */
export { ChaperoneError, SpiffeIdError, TrustDomainError, BundleError, X509SvidError, JwtSvidError } from './errors'
export type { BundleErrorCode, X509SvidErrorCode, JwtSvidErrorCode } from './errors'
export { SpiffeId, TrustDomain, parseSpiffeId, parseTrustDomain, MAX_SPIFFE_ID_BYTES, MAX_TRUST_DOMAIN_BYTES } from './id'
export type { X509BundleSource, JwtBundleSource } from './bundle-source'
export { X509Bundle } from './x509-bundle'
export { JwtBundle } from './jwt-bundle'
export { SpiffeBundle } from './spiffe-bundle'
export type { SpiffeBundleDocument, SpiffeBundleParts } from './spiffe-bundle'
export { BundleSet } from './bundle-set'
export { verifyX509Svid, verifyX509SvidChain, MAX_CHAIN_LENGTH } from './x509-svid'
export type { VerifyX509SvidOptions, VerifiedX509Svid } from './x509-svid'
export { spiffeCheckServerIdentity, verifyTlsPeer, verifyPeerChain, peerChainOf } from './tls-peer'
export type { ExpectedPeer } from './tls-peer'
export { validateJwtSvid } from './jwt-svid'
export type { JwtSvid } from './jwt-svid'
export { decodePem, encodePem } from './pem'
export { WorkloadClient, workloadEndpoint, WorkloadApiError } from './workload-client'
export type { WorkloadApiErrorCode, X509Svid, X509SvidResponseParsed, JwtSvidParsed } from './workload-client'
