/**
 * Listening on a Unix socket that the agent accepts itself (so it can read the peer's kernel credentials before
 * handing the connection to gRPC). The socket gets its mode before anyone can connect: it is created under a
 * umask that leaves it 0600, then given to its group, then opened up to the final mode.
 */
import { chmodSync, chownSync, lstatSync, mkdirSync, readFileSync, statSync, unlinkSync } from 'node:fs'
import { dirname, relative, sep } from 'node:path'
import { connect, createServer } from 'node:net'
import type { Server, Socket } from 'node:net'
import { AgentError } from './errors'

export interface UnixSocketOptions {
  readonly path: string
  /** Final mode of the socket file, e.g. 0o600 (owner only), 0o660 (owner and group), 0o666 (everyone). */
  readonly mode: number
  /** Group (name or numeric gid) to own the socket; needed for a mode that grants the group access. */
  readonly group?: string
  /** The listen queue's length (Node's default is 511; the kernel caps it at net.core.somaxconn). */
  readonly backlog?: number
  /**
   * The socket's directory: the mode of the folders created for it (0755 by default; given to `group` too) and
   * whether it must be private, i.e. owned by this user or root and not writable by every user, so that no other
   * user can have put it there, or can swap the socket in it (a directory under /tmp, like SPIRE's default);
   * `widen`: an existing directory this user owns gains `mode`'s permissions too (so a socket opened to other users
   * can be reached in a directory an earlier run made closed; nothing is ever taken away from a directory that
   * may hold other sockets).
   */
  readonly directory?: { readonly mode: number, readonly private?: boolean, readonly widen?: boolean }
}

/** Listens on `options.path`; resolves once listening with the final mode and group in place. */
export async function listenUnixSocket (options: UnixSocketOptions, onConnection: (socket: Socket) => void): Promise<Server> {
  const gid = options.group === undefined ? undefined : groupId(options.group)
  makeDirectory(dirname(options.path), options.directory?.mode ?? 0o755, gid)
  if (options.directory?.private === true) checkPrivate(dirname(options.path))
  if (options.directory?.widen === true) widenOwnDirectory(dirname(options.path), options.directory.mode)
  await removeStaleSocket(options.path)
  const server = createServer(onConnection)
  const previous = process.umask(0o177)
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen({ path: options.path, backlog: options.backlog }, () => { server.off('error', reject); resolve() })
    })
  } catch (err) {
    throw new AgentError('ERR_SOCKET_UNAVAILABLE', `cannot listen on ${options.path}: ${(err as Error).message}`, { cause: err })
  } finally {
    process.umask(previous)
  }
  if (gid !== undefined) chownSync(options.path, -1, gid)
  chmodSync(options.path, options.mode)
  server.on('close', () => { try { unlinkSync(options.path) } catch { /* already gone */ } })
  return server
}

/** Creates the directory and its missing parents with `mode` (exactly: the umask does not apply), given to `gid`. */
function makeDirectory (dir: string, mode: number, gid: number | undefined): void {
  const first = mkdirSync(dir, { recursive: true, mode })
  if (first === undefined) return
  const created = [first, ...relative(first, dir).split(sep).filter(part => part !== '').map((_, i, parts) => [first, ...parts.slice(0, i + 1)].join(sep))]
  for (const path of created) {
    if (gid !== undefined) chownSync(path, -1, gid)
    chmodSync(path, mode)
  }
}

/** Adds `mode`'s permissions to the directory when this user owns it (one owned by root, the agent not root, is left as it is). */
function widenOwnDirectory (dir: string, mode: number): void {
  const { uid, mode: current } = statSync(dir)
  if (uid === (process.getuid?.() ?? 0) && (current & mode) !== mode) chmodSync(dir, (current & 0o7777) | mode)
}

/** Refuses a directory another user owns, or that every user may write. */
function checkPrivate (dir: string): void {
  const { uid, mode } = statSync(dir)
  const self = process.getuid?.() ?? 0
  if ((uid !== self && uid !== 0) || (mode & 0o002) !== 0) {
    throw new AgentError('ERR_SOCKET_UNAVAILABLE', `${dir} is ${uid !== self && uid !== 0 ? `owned by uid ${uid}` : 'writable by every user'}: ` +
      'another user could replace the socket in it; remove it, or choose another socket path')
  }
}

/** A socket file left by a process that died is removed; one that still answers belongs to a live agent. */
async function removeStaleSocket (path: string): Promise<void> {
  let isSocket: boolean
  try {
    isSocket = lstatSync(path).isSocket()
  } catch {
    return
  }
  if (!isSocket) throw new AgentError('ERR_SOCKET_UNAVAILABLE', `${path} exists and is not a socket; refusing to replace it`)
  const live = await new Promise<boolean>(resolve => {
    const probe = connect(path, () => { probe.destroy(); resolve(true) })
    probe.on('error', () => resolve(false))
  })
  if (live) throw new AgentError('ERR_SOCKET_IN_USE', `${path} is in use by another process (is an agent already running?)`)
  unlinkSync(path)
}

/** A numeric gid, or the gid of a group named in /etc/group. */
function groupId (group: string): number {
  if (/^\d+$/.test(group)) return Number(group)
  let groups = ''
  try {
    groups = readFileSync('/etc/group', 'utf8')
  } catch { /* no group database: the name cannot be resolved */ }
  for (const line of groups.split('\n')) {
    const [name, , gid] = line.split(':')
    if (name === group && gid !== undefined && /^\d+$/.test(gid)) return Number(gid)
  }
  throw new AgentError('ERR_SOCKET_GROUP_UNKNOWN', `group "${group}" is not in /etc/group; give its name or numeric gid`)
}
