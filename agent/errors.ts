/** Errors of the agent's process level: its sockets, and reaching it from the CLI. */
import { ChaperoneError } from '../spiffe/errors'

export type AgentErrorCode =
  | 'ERR_SOCKET_IN_USE'
  | 'ERR_SOCKET_UNAVAILABLE'
  | 'ERR_SOCKET_GROUP_UNKNOWN'
  | 'ERR_ADMIN_UNAVAILABLE'
  | 'ERR_ADMIN_REQUEST_INVALID'
  | 'ERR_ADMIN_FAILED'
  | 'ERR_METRICS_LISTEN'

export class AgentError extends ChaperoneError<AgentErrorCode> {}
