/**
 * Errors of node mode's Docker discovery: one class, one stable code per meaning (README, "Error codes"). Each
 * message says what to check. None of them stops the node proxy: discovery logs them, keeps serving what it last
 * found and tries again.
 */
import { ChaperoneError } from '../spiffe/errors'

export type DockerErrorCode =
  | 'ERR_NODE_DOCKER_UNREACHABLE'
  | 'ERR_NODE_DOCKER_TIMEOUT'
  | 'ERR_NODE_DOCKER_RESPONSE'
  | 'ERR_NODE_DOCKER_NETWORK_NOT_FOUND'
  | 'ERR_NODE_DOCKER_NETWORK_DRIVER'
  | 'ERR_NODE_DOCKER_LABEL_INVALID'

export class DockerError extends ChaperoneError<DockerErrorCode> {
  /** The Engine API's HTTP status, for ERR_NODE_DOCKER_RESPONSE. */
  readonly status?: number

  constructor (code: DockerErrorCode, message: string, options: { cause?: unknown, status?: number } = {}) {
    super(code, message, { cause: options.cause })
    this.status = options.status
  }
}

/** Why the Engine's socket could not be used: what to check for each errno. */
export function unreachable (socketPath: string, error: NodeJS.ErrnoException): DockerError {
  const hint = error.code === 'ENOENT'
    ? 'no such socket: is dockerd running, and is its socket mounted into the node proxy\'s container (-v /var/run/docker.sock:/var/run/docker.sock)? Else set docker.socket'
    : error.code === 'ECONNREFUSED'
      ? 'nothing listens on it: is dockerd running?'
      : error.code === 'EACCES' || error.code === 'EPERM'
        ? 'permission denied: the node proxy must run as root (or in the socket\'s group, usually docker)'
        : error.code === 'ECONNRESET' || error.code === 'EPIPE'
          ? 'the connection was cut: dockerd stopped or restarted?'
          : error.message
  return new DockerError('ERR_NODE_DOCKER_UNREACHABLE', `cannot reach the Docker Engine at ${socketPath}: ${hint}`, { cause: error })
}
