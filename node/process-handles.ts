/**
 * Handles on processes (pidfd_open(2), Linux 5.3): a pidfd names one process, never a later one that reuses its PID,
 * and becomes readable when that process exits. Node mode holds one on the process it attests for an app, to know
 * when the app is gone.
 *
 * How exits are noticed: a poll(2) of every held pidfd at once, without waiting, on a timer (default every second),
 * while any is held. Node 20 has no public way to wait for a descriptor that is neither a socket, a pipe, a TTY nor a
 * file: `new net.Socket({ fd: pidfd })` throws ERR_INVALID_FD_TYPE (libuv guesses an anonymous inode as UNKNOWN);
 * a Pipe handle from process.binding('pipe_wrap') does wait on it (the read fails with EINVAL at the exit), but that
 * is a deprecated internal API; koffi's async calls run on libuv's threadpool, so a blocking poll there would take
 * one of its four threads per process. One non-blocking poll per interval costs one system call for all processes.
 * The timer keeps the event loop alive while any process is held: close the handles no longer needed.
 */
import { netnsOfProcess, pidsInNetns } from './netns-processes'
import type { NetnsIdentity } from './netns'
import { bindLibc } from './libc'
import type { Libc } from './libc'
import { NetnsError, errnoName } from './errors'

const POLLIN = 0x1
const POLLNVAL = 0x20
const POLLFD_BYTES = 8
const DEFAULT_POLL_INTERVAL_MS = 1000

/** How a hold ended: the process exited, or the handle was closed first. */
export type ProcessEnd = 'exited' | 'closed'

/** What a ProcessHandle needs from the ProcessHandles that made it. */
interface HandleOwner {
  /** True if the pidfd is readable now: the process has exited. */
  probe: (fd: number) => boolean
  /** Called once when the hold ends, with the pidfd to close. */
  release: (handle: ProcessHandle, fd: number) => void
  /** Receives the function that ends the hold, for the poll to call. */
  track: (handle: ProcessHandle, end: (how: ProcessEnd) => void) => void
}

/** A held process. Its pidfd is closed when the process exits or the handle is closed. */
export class ProcessHandle {
  readonly pid: number
  /** Settles once: 'exited' when the process has exited, 'closed' when the handle was closed before. */
  readonly ended: Promise<ProcessEnd>
  #fd: number
  #ended: ProcessEnd | undefined
  #settle: (end: ProcessEnd) => void = () => undefined
  readonly #owner: HandleOwner

  /** Made by ProcessHandles.open, which learns how to end the hold through `owner.track`. */
  constructor (pid: number, fd: number, owner: HandleOwner) {
    this.pid = pid
    this.#fd = fd
    this.#owner = owner
    this.ended = new Promise(resolve => { this.#settle = resolve })
    owner.track(this, how => { this.#end(how) })
  }

  /** The pidfd, or -1 once the hold ended. */
  get fd (): number { return this.#fd }

  /** True once the process is known to have exited. */
  get exited (): boolean { return this.#ended === 'exited' }

  /** Asks the kernel now (not waiting for the next poll) whether the process has exited. */
  hasExited (): boolean {
    if (this.#ended === undefined && this.#owner.probe(this.#fd)) this.#end('exited')
    return this.exited
  }

  /** Idempotent. */
  close (): void { this.#end('closed') }

  #end (how: ProcessEnd): void {
    if (this.#ended !== undefined) return
    this.#ended = how
    const fd = this.#fd
    this.#fd = -1
    this.#owner.release(this, fd)
    this.#settle(how)
  }
}

export interface ProcessHandlesOptions {
  /** How often held pidfds are polled for exits; default 1000 ms. */
  pollIntervalMs?: number
}

/** Opens and watches process handles; binds libc once, at construction. */
export class ProcessHandles {
  readonly #libc: Libc
  readonly #intervalMs: number
  /** Each held process, with the function that ends its hold. */
  readonly #held = new Map<ProcessHandle, (how: ProcessEnd) => void>()
  #timer: NodeJS.Timeout | undefined

  constructor (options: ProcessHandlesOptions = {}) {
    this.#libc = bindLibc()
    this.#intervalMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS
    if (!Number.isInteger(this.#intervalMs) || this.#intervalMs < 1) {
      throw new RangeError(`pollIntervalMs must be a positive integer, got ${this.#intervalMs}`)
    }
  }

  /**
   * Holds process `pid`; with `netns`, only while it is in that network namespace (checked after the pidfd is
   * open, so a PID reused in between is caught). Throws ERR_NETNS_PROCESS_GONE if there is no such process (any more),
   * or it is elsewhere; ERR_NETNS_PIDFD if the kernel refuses a pidfd.
   */
  open (pid: number, netns?: NetnsIdentity): ProcessHandle {
    if (!Number.isInteger(pid) || pid < 1) throw new NetnsError('ERR_NETNS_PROCESS_GONE', `${pid} is not a process ID`)
    const fd = this.#libc.pidfdOpen(pid, 0)
    if (fd < 0) throw this.#openFailure(pid, errnoName(this.#libc.errno()))
    try {
      // In this order: if the process is still alive after its namespace was read, what was read was its own.
      if (netns !== undefined && netnsOfProcess(pid) !== netns) {
        throw new NetnsError('ERR_NETNS_PROCESS_GONE', `process ${pid} is not in network namespace ${netns} (any more)`)
      }
      if (this.#readable(fd)) throw new NetnsError('ERR_NETNS_PROCESS_GONE', `process ${pid} has exited`)
    } catch (error) {
      this.#libc.close(fd)
      throw error
    }
    const handle = new ProcessHandle(pid, fd, {
      probe: fd => this.#readable(fd),
      release: (h, fd) => { this.#release(h, fd) },
      track: (h, end) => { this.#held.set(h, end) }
    })
    this.#timer ??= setInterval(() => { this.#poll() }, this.#intervalMs)
    return handle
  }

  /** Holds the first (lowest-PID) process found in network namespace `netns`, or undefined if none could be held. */
  openIn (netns: NetnsIdentity): ProcessHandle | undefined {
    for (const pid of pidsInNetns(netns)) {
      try {
        return this.open(pid, netns)
      } catch (error) {
        if ((error as NetnsError).code !== 'ERR_NETNS_PROCESS_GONE') throw error
      }
    }
    return undefined
  }

  /** How many processes are held. */
  get size (): number { return this.#held.size }

  /** Closes every handle (their `ended` settle 'closed') and stops polling. Idempotent. */
  close (): void {
    for (const handle of [...this.#held.keys()]) handle.close()
  }

  #openFailure (pid: number, errno: string): NetnsError {
    if (errno === 'ESRCH') return new NetnsError('ERR_NETNS_PROCESS_GONE', `no process ${pid} (it has exited)`, { failure: { errno, syscall: 'pidfd_open' } })
    const hint = errno === 'ENOSYS'
      ? 'the kernel has no pidfd_open (Linux 5.3 or later is needed)'
      : errno === 'EMFILE' || errno === 'ENFILE'
        ? 'out of file descriptors (raise the limit: LimitNOFILE, ulimit -n)'
        // a thread's ID: EINVAL, or ENOENT on kernels with pidfs (6.9 and later)
        : errno === 'EINVAL' || errno === 'ENOENT' ? `${pid} is not a process (a thread's ID?)` : errno
    return new NetnsError('ERR_NETNS_PIDFD', `cannot hold process ${pid}: ${hint}`, { failure: { errno, syscall: 'pidfd_open' } })
  }

  #readable (fd: number): boolean {
    const pollfd = Buffer.alloc(POLLFD_BYTES)
    pollfd.writeInt32LE(fd, 0)
    pollfd.writeInt16LE(POLLIN, 4)
    return this.#libc.poll(pollfd, 1, 0) > 0 && (pollfd.readInt16LE(6) & POLLIN) !== 0
  }

  /** One non-blocking poll of every held pidfd; ends the holds of processes that exited. */
  #poll (): void {
    const held = [...this.#held]
    const pollfds = Buffer.alloc(POLLFD_BYTES * held.length)
    held.forEach(([handle], i) => {
      pollfds.writeInt32LE(handle.fd, i * POLLFD_BYTES)
      pollfds.writeInt16LE(POLLIN, i * POLLFD_BYTES + 4)
    })
    if (this.#libc.poll(pollfds, held.length, 0) <= 0) return
    held.forEach(([, end], i) => {
      const revents = pollfds.readInt16LE(i * POLLFD_BYTES + 6)
      // POLLNVAL: the descriptor was closed behind our back; nothing more can be learnt from it.
      if ((revents & POLLNVAL) !== 0) end('closed')
      else if ((revents & POLLIN) !== 0) end('exited')
    })
  }

  #release (handle: ProcessHandle, fd: number): void {
    this.#held.delete(handle)
    this.#libc.close(fd)
    if (this.#held.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer)
      this.#timer = undefined
    }
  }
}
