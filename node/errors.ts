/**
 * Errors of node mode's namespace primitives: one class, one stable code per meaning (README, "Error codes").
 * A failed system call also carries its errno name (`EPERM`, `EADDRINUSE`, …) and the call's name, as Node's own
 * errors do, and its message says what to check.
 */
import { getSystemErrorName } from 'node:util'
import { ChaperoneError } from '../spiffe/errors'

export type NetnsErrorCode =
  | 'ERR_NETNS_OPEN'
  | 'ERR_NETNS_NOT_A_NETNS'
  | 'ERR_NETNS_ENTER'
  | 'ERR_NETNS_RETURN'
  | 'ERR_NETNS_NESTED'
  | 'ERR_NETNS_ASYNC'
  | 'ERR_NETNS_CLOSED'
  | 'ERR_NETNS_ADDRESS_INVALID'
  | 'ERR_NETNS_SOCKET'
  | 'ERR_NETNS_CONNECT_TIMEOUT'
  | 'ERR_NETNS_PROCESS_GONE'
  | 'ERR_NETNS_PIDFD'

export interface SystemCallFailure {
  /** The errno's name, e.g. `EPERM`. */
  errno: string
  /** The failed call, e.g. `setns`, `bind`. */
  syscall: string
}

export class NetnsError extends ChaperoneError<NetnsErrorCode> {
  readonly errno?: string
  readonly syscall?: string

  constructor (code: NetnsErrorCode, message: string, options: { cause?: unknown, failure?: SystemCallFailure } = {}) {
    super(code, message, { cause: options.cause })
    this.errno = options.failure?.errno
    this.syscall = options.failure?.syscall
  }
}

/** The name of a positive errno value (`EPERM`), or `errno <n>` for one Node does not know. */
export function errnoName (errno: number): string {
  try {
    return getSystemErrorName(-Math.abs(errno))
  } catch {
    return `errno ${errno}`
  }
}

/** The errno name of a Node fs error (`ENOENT`…), or undefined. */
export function nodeErrno (error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined
}
