/**
 * The libc calls node mode needs and Node has no API for (setns, sockets made by hand, pidfds), bound through koffi
 * as proxy/steps/original-dst.ts binds getsockopt. Each object that needs them binds its own set at construction;
 * koffi is loaded lazily, so processes that never run node mode never load it. Every call returns -1 on failure
 * and the caller reads `errno()` at once, before anything else can overwrite it.
 */
import type Koffi from 'koffi'
import type { LibraryHandle } from 'koffi'

/** Pointer arguments are Buffers koffi hands to C as they are (in and out). */
export interface Libc {
  setns: (fd: number, nstype: number) => number
  /** ioctl without an argument (e.g. NS_GET_NSTYPE). */
  ioctl: (fd: number, request: number) => number
  socket: (domain: number, type: number, protocol: number) => number
  setsockopt: (fd: number, level: number, name: number, value: Buffer, length: number) => number
  bind: (fd: number, address: Buffer, length: number) => number
  listen: (fd: number, backlog: number) => number
  /** `length` is a socklen_t (4 bytes) the call reads and overwrites. */
  getsockname: (fd: number, address: Buffer, length: Buffer) => number
  pidfdOpen: (pid: number, flags: number) => number
  /** `fds` is an array of struct pollfd (8 bytes each: fd, events, revents). */
  poll: (fds: Buffer, count: number, timeoutMs: number) => number
  close: (fd: number) => number
  errno: () => number
}

/** pidfd_open(2) has number 434 on every architecture that shares asm-generic's table, x86_64 and aarch64 included. */
const SYS_PIDFD_OPEN = 434

type Variadic = (...args: unknown[]) => number | bigint

export function bindLibc (): Libc {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded lazily on purpose (see above)
  const koffi = require('koffi') as typeof Koffi
  const lib = koffi.load('libc.so.6')
  const fn = <T>(prototype: string): T => lib.func(prototype) as unknown as T
  const ioctl = fn<Variadic>('int ioctl(int fd, unsigned long request, ...)')
  return {
    setns: fn('int setns(int fd, int nstype)'),
    ioctl: (fd, request) => Number(ioctl(fd, request)),
    socket: fn('int socket(int domain, int type, int protocol)'),
    setsockopt: fn('int setsockopt(int fd, int level, int name, const void *value, uint32_t length)'),
    bind: fn('int bind(int fd, const void *address, uint32_t length)'),
    listen: fn('int listen(int fd, int backlog)'),
    getsockname: fn('int getsockname(int fd, void *address, void *length)'),
    pidfdOpen: pidfdOpen(lib, fn),
    poll: fn('int poll(void *fds, unsigned long count, int timeout)'),
    close: fn('int close(int fd)'),
    errno: () => koffi.errno()
  }
}

/** glibc exports pidfd_open since 2.36; older ones only through syscall(2). */
function pidfdOpen (lib: LibraryHandle, fn: <T>(prototype: string) => T): Libc['pidfdOpen'] {
  try {
    return fn('int pidfd_open(int pid, unsigned int flags)')
  } catch {
    const syscall = lib.func('long syscall(long number, ...)') as unknown as Variadic
    return (pid, flags) => Number(syscall(SYS_PIDFD_OPEN, 'int', pid, 'unsigned int', flags))
  }
}
