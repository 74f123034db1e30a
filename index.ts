/**
 * Chaperone's library surface, for platform services that verify peers themselves: the SPIFFE primitives
 * (IDs, bundles, SVID verification, TLS peer checks). The policy engine joins this surface with the policy issue.
 */
export * from './spiffe/index'
