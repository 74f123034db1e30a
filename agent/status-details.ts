/**
 * A gRPC status message as the agent's APIs send it. It travels in an HTTP/2 trailer, which a client refuses past a
 * few KiB (grpc-js then never completes the call: it hangs to its deadline), so a message that echoes a huge input
 * (a selector, a page token) is cut. Every message the agent writes itself is far shorter and goes out whole.
 */

/** The longest status message sent whole, in characters. */
export const MAX_STATUS_DETAILS = 1024

export function statusDetails (message: string): string {
  return message.length <= MAX_STATUS_DETAILS ? message : `${message.slice(0, MAX_STATUS_DETAILS)}… (${message.length} characters in all)`
}
