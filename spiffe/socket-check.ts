/**
 * What to check about an agent's socket that nobody answered on, from the file system itself: missing, not a
 * socket, or there but silent. The sources' ready() timeouts say it.
 */
import { statSync } from 'node:fs'

/** `target` is the grpc-js target (`unix:///…` or other); `address` as the caller gave it; `envName` where it may come from. */
export function socketPathProblem (target: string, address: string, envName: string): string {
  if (!target.startsWith('unix://')) return `is the agent running and listening on ${address}?`
  const path = target.slice('unix://'.length)
  const stat = statSync(path, { throwIfNoEntry: false })
  if (stat === undefined) return `the socket ${path} does not exist: is the agent running, and is this its address (${envName})?`
  if (!stat.isSocket()) return `${path} is not a socket: is this the agent's address (${envName})?`
  return `the socket ${path} exists but the agent does not answer on it: is the agent running and ready?`
}
