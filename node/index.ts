/**
 * node/ — node mode: one proxy per device serving every app's network namespace (as Istio's ztunnel does in its
 * in-pod mode). The node process stays in its own namespace; for each app it enters the app's namespace briefly on
 * the main thread, makes sockets there and returns at once, and Node serves those sockets: a connection accepted in
 * app X's namespace is app X's. Reuses proxy/ steps and listeners; identities come through the Delegated Identity API.
 * Imports spiffe/, policy/, proxy/ and config/.
 */
export { NetnsError } from './errors'
export type { NetnsErrorCode } from './errors'
export { Netns, NetnsHandle, netnsIdentity, CLONE_NEWNET } from './netns'
export type { NetnsIdentity } from './netns'
export { NetnsSockets } from './netns-sockets'
export type { NetnsListenOptions, NetnsListener, NetnsSocketOptions, NetnsConnectOptions } from './netns-sockets'
export { pidsInNetns, netnsOfProcess } from './netns-processes'
export { ProcessHandles, ProcessHandle } from './process-handles'
export type { ProcessEnd, ProcessHandlesOptions } from './process-handles'
