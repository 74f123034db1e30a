/**
 * What went wrong connecting to a local socket, from the errno that grpc-js buries in its status details
 * ("No connection established. Last error: Error: connect ENOENT /path. Resolution note: …"), so that a message
 * says what to check instead of repeating gRPC's internals.
 */
export type SocketErrno = 'ENOENT' | 'ECONNREFUSED' | 'EACCES' | 'EPERM' | 'ENOTSOCK' | 'EAGAIN'

const WHAT: Record<SocketErrno, string> = {
  ENOENT: 'no socket there',
  ECONNREFUSED: 'nothing is listening there',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ENOTSOCK: 'that path is not a socket',
  EAGAIN: 'too many connections are waiting'
}

/** The problem and the caller's advice for it (`advice[errno]`), or undefined when the details hold no such errno. */
export function socketProblem (details: string, advice: Partial<Record<SocketErrno, string>>): string | undefined {
  const errno = /\b(ENOENT|ECONNREFUSED|EACCES|EPERM|ENOTSOCK|EAGAIN)\b/.exec(details)?.[1] as SocketErrno | undefined
  if (errno === undefined) return undefined
  return advice[errno] === undefined ? WHAT[errno] : `${WHAT[errno]}; ${advice[errno]}`
}
