/**
 * Running `node` as another user (setpriv) for tests of who may call the agent's sockets. tap's process-info hook
 * puts its loader into every child's NODE_OPTIONS, and that loader cannot write its records as another user (it
 * prints EACCES at exit), so the child starts without it. Not a test itself.
 */
import { SETPRIV } from './netns-tools'

/** The command and the first arguments that run `node <args>` as uid and gid `id`, with these supplementary groups. */
export function nodeAsUser (id: number, groups: readonly number[] = []): [string, string[]] {
  return [SETPRIV as string, [`--reuid=${id}`, `--regid=${id}`, groups.length === 0 ? '--clear-groups' : `--groups=${groups.join(',')}`,
    'env', '-u', 'NODE_OPTIONS', process.execPath]]
}
