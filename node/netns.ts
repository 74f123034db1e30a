/**
 * Network namespaces: open one by path as a descriptor, tell namespaces apart by identity, and run a function with
 * the calling thread inside one. Node mode's one process stays in its own namespace; to make an app's sockets it
 * enters the app's namespace on the main thread, runs a synchronous function there and returns at once. A socket
 * belongs to the namespace it was created in for its whole life (setns(2), network_namespaces(7)), so Node serves it
 * afterwards from anywhere.
 *
 * setns acts on the calling thread only: libuv's threadpool and V8's threads never move, and nothing else can run on
 * the main thread while `fn` runs, because `fn` must not await (an async `fn` is refused, after the return).
 */
import { closeSync, fstatSync, openSync, statSync } from 'node:fs'
import type { Stats } from 'node:fs'
import { bindLibc } from './libc'
import type { Libc } from './libc'
import { NetnsError, errnoName, nodeErrno } from './errors'

/** setns(2)'s nstype for network namespaces; also what NS_GET_NSTYPE answers for one. */
export const CLONE_NEWNET = 0x40000000
/** ioctl_ns(2): _IO(0xb7, 0x3), the type of namespace a namespace file refers to (Linux 4.11). */
const NS_GET_NSTYPE = 0xb703
const NAMESPACE_TYPES: Record<number, string> = {
  0x80: 'time', 0x20000: 'mount', 0x2000000: 'cgroup', 0x4000000: 'UTS', 0x8000000: 'IPC', 0x10000000: 'user', 0x20000000: 'PID'
}

/**
 * A namespace's identity, `<st_dev>:<st_ino>` of its namespace file: the same namespace reached by any path
 * (/proc/<pid>/ns/net, /var/run/netns/<name>, a bind mount) has the same identity, and a namespace made anew (an app's
 * container restarted) has another. Usable as a Map key.
 */
export type NetnsIdentity = string

function identityOf (stats: Stats): NetnsIdentity {
  return `${stats.dev}:${stats.ino}`
}

function openFailure (path: string, error: unknown): NetnsError {
  const errno = nodeErrno(error) ?? 'EIO'
  const hint = errno === 'ENOENT'
    ? 'no such file: has the process exited, or is the name wrong (`ip netns list`)?'
    : errno === 'EACCES' || errno === 'EPERM'
      ? 'permission denied: reading another process\'s namespace needs root (CAP_SYS_PTRACE)'
      : (error as Error).message
  return new NetnsError('ERR_NETNS_OPEN', `cannot open network namespace ${path}: ${hint}`, { cause: error, failure: { errno, syscall: 'open' } })
}

/** The identity of the namespace `path` refers to, without opening it (stat follows /proc's namespace links). */
export function netnsIdentity (path: string): NetnsIdentity {
  try {
    return identityOf(statSync(path))
  } catch (error) {
    throw openFailure(path, error)
  }
}

/** An open network namespace: a descriptor that keeps it alive and enterable until closed. */
export class NetnsHandle {
  readonly path: string
  readonly identity: NetnsIdentity
  #fd: number
  readonly #onClose: (handle: NetnsHandle) => void

  /** Made by Netns.open. */
  constructor (path: string, fd: number, identity: NetnsIdentity, onClose: (handle: NetnsHandle) => void) {
    this.path = path
    this.#fd = fd
    this.identity = identity
    this.#onClose = onClose
  }

  get fd (): number {
    if (this.#fd < 0) throw new NetnsError('ERR_NETNS_CLOSED', `network namespace ${this.path} was used after it was closed`)
    return this.#fd
  }

  get closed (): boolean { return this.#fd < 0 }

  /** Idempotent. The namespace itself lives on while any process or bind mount holds it. */
  close (): void {
    if (this.#fd < 0) return
    const fd = this.#fd
    this.#fd = -1
    this.#onClose(this)
    closeSync(fd)
  }
}

const isThenable = (value: unknown): boolean =>
  typeof (value as { then?: unknown } | null)?.then === 'function'

/**
 * Enters network namespaces on the calling thread and comes back. Construct one per process, on the main thread:
 * it binds libc and opens the thread's own namespace (/proc/thread-self/ns/net) once, to return to.
 */
export class Netns {
  readonly #libc: Libc
  readonly #home: NetnsHandle
  readonly #open = new Set<NetnsHandle>()
  #inside: NetnsHandle | undefined
  #broken: NetnsError | undefined

  constructor () {
    this.#libc = bindLibc()
    this.#home = this.open('/proc/thread-self/ns/net')
    this.#open.delete(this.#home)
  }

  /** The identity of the namespace this thread returns to. */
  get homeIdentity (): NetnsIdentity { return this.#home.identity }

  /** The identity of the namespace the calling thread is in now. */
  currentIdentity (): NetnsIdentity { return netnsIdentity('/proc/thread-self/ns/net') }

  /** Opens a network namespace file: /proc/<pid>/ns/net, /var/run/netns/<name>, or a bind mount of one. */
  open (path: string): NetnsHandle {
    let fd: number
    try {
      fd = openSync(path, 'r') // libuv opens with O_CLOEXEC
    } catch (error) {
      throw openFailure(path, error)
    }
    try {
      const type = this.#libc.ioctl(fd, NS_GET_NSTYPE)
      if (type !== CLONE_NEWNET) {
        const errno = type < 0 ? errnoName(this.#libc.errno()) : undefined
        const what = type < 0
          ? `not a namespace file (ioctl NS_GET_NSTYPE: ${errno}); give /proc/<pid>/ns/net, /var/run/netns/<name> or a bind mount of one`
          : `a ${NAMESPACE_TYPES[type] ?? `0x${type.toString(16)}`} namespace, not a network namespace`
        throw new NetnsError('ERR_NETNS_NOT_A_NETNS', `${path} is ${what}`, errno === undefined ? {} : { failure: { errno, syscall: 'ioctl' } })
      }
      const handle = new NetnsHandle(path, fd, identityOf(fstatSync(fd)), h => this.#open.delete(h))
      this.#open.add(handle)
      return handle
    } catch (error) {
      closeSync(fd)
      throw error
    }
  }

  /**
   * Runs `fn` synchronously with the calling thread in `ns`, then always returns the thread to its own namespace,
   * also when `fn` throws. Sockets `fn` creates (through libc) are `ns`'s. `fn` must not await; nested calls are
   * refused. If the thread cannot return, the process is left in the wrong namespace: ERR_NETNS_RETURN is thrown,
   * now and on every later call, and the caller must exit.
   */
  within<T> (ns: NetnsHandle, fn: () => T): T {
    if (this.#broken !== undefined) throw this.#broken
    if (this.#home.closed) throw new NetnsError('ERR_NETNS_CLOSED', 'Netns was used after it was closed')
    if (this.#inside !== undefined) {
      throw new NetnsError('ERR_NETNS_NESTED', `within(${ns.path}) was called inside within(${this.#inside.path}); enter one namespace at a time`)
    }
    const fd = ns.fd
    const enter = ns.identity !== this.#home.identity
    if (enter && this.#libc.setns(fd, CLONE_NEWNET) !== 0) {
      const errno = errnoName(this.#libc.errno())
      const hint = errno === 'EPERM'
        ? 'entering another network namespace needs CAP_SYS_ADMIN (run the node proxy as root, or grant CAP_SYS_ADMIN and CAP_NET_ADMIN)'
        : errno
      throw new NetnsError('ERR_NETNS_ENTER', `cannot enter network namespace ${ns.path}: ${hint}`, { failure: { errno, syscall: 'setns' } })
    }
    this.#inside = ns
    let outcome: { value: T } | { error: unknown }
    try {
      outcome = { value: fn() }
    } catch (error) {
      outcome = { error }
    }
    this.#inside = undefined
    if (enter) this.#returnHome(ns, 'error' in outcome ? outcome.error : undefined)
    if ('error' in outcome) throw outcome.error
    if (isThenable(outcome.value)) {
      (outcome.value as PromiseLike<unknown>).then(undefined, () => { /* reported as ERR_NETNS_ASYNC below */ })
      throw new NetnsError('ERR_NETNS_ASYNC', `the function run within(${ns.path}) returned a promise: it must not await, for whatever it does after an await runs in the node's own namespace`)
    }
    return outcome.value
  }

  #returnHome (from: NetnsHandle, fnError: unknown): void {
    if (this.#libc.setns(this.#home.fd, CLONE_NEWNET) === 0) return
    const errno = errnoName(this.#libc.errno())
    this.#broken = new NetnsError('ERR_NETNS_RETURN',
      `the main thread could not return from network namespace ${from.path} to its own (setns: ${errno}); ` +
      'the process is in the wrong network namespace and must exit', { cause: fnError, failure: { errno, syscall: 'setns' } })
    throw this.#broken
  }

  /** Closes the home descriptor and every namespace this object opened. Idempotent. */
  close (): void {
    for (const handle of [...this.#open]) handle.close()
    this.#home.close()
  }
}
