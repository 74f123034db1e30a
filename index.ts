/**
 * Chaperone's library surface, for platform services that verify peers and decide access themselves: the SPIFFE
 * primitives (IDs, bundles, SVID verification, TLS peer checks) and the policy engine (`loadPolicy`,
 * `compilePolicy`, and the compiled policy's `decide`).
 */
export * from './spiffe/index'
export * from './policy/index'
