/**
 * agent/attestation/ — workload attestation: who is calling the agent. The kernel names the caller (SO_PEERCRED of
 * the accepted Unix socket), /proc describes it (ids, groups, executable path and hash, container), Docker adds what
 * it knows of that container, and the result is the caller's selectors in the store's canonical form. A process pin
 * (pid + start time) lets the agent detect that a pid was reused while it was attesting (DESIGN.md, invariant 3).
 */
export { peerCredentials } from './peer-credentials'
export type { PeerCredentials } from './peer-credentials'
export { pinProcess, isSameProcess, isRunning } from './process-pin'
export type { ProcessPin } from './process-pin'
export { WorkloadAttestor } from './workload-attestor'
export type { AttestorOptions } from './workload-attestor'
export { AttestationError } from './errors'
export type { AttestationErrorCode } from './errors'
