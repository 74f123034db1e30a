/**
 * TCP sockets made inside an app's network namespace, then served by Node from the node's own namespace:
 *
 * - `listen` makes a listening socket (SO_REUSEADDR, bound, listening) and returns its descriptor for
 *   `net.Server.listen({ fd })`. Node adopts the descriptor as it is (libuv's uv_tcp_open, then listen(2) again with
 *   Node's backlog), so connections it accepts are the namespace's, with the namespace's addresses.
 * - `connect` makes an unconnected socket (with SO_MARK if asked) and has Node connect it:
 *   `new net.Socket({ fd }).connect({ host, port })` reuses the descriptor (libuv's connect keeps an open fd). It
 *   must happen in the same tick as the construction: a Socket made from a descriptor starts reading at once, and an
 *   unconnected TCP socket polls as hung up, so if the event loop ran in between, the read would fail with ENOTCONN
 *   and destroy it. The host must be an IP literal for the same reason (a name would be looked up asynchronously,
 *   and happy eyeballs opens sockets of its own). What comes back is a normal net.Socket: 'connect', or 'error'
 *   (ECONNREFUSED…, ERR_NETNS_CONNECT_TIMEOUT), usable by tls.connect({ socket }).
 *
 * IPv4 only for now. Every descriptor is closed on every failure path.
 */
import { isIPv4, Socket } from 'node:net'
import { bindLibc } from './libc'
import type { Libc } from './libc'
import type { Netns, NetnsHandle } from './netns'
import { NetnsError, errnoName } from './errors'

const AF_INET = 2
// x86_64 and aarch64 values (mips, sparc and alpha differ)
const SOCK_STREAM = 1
const SOCK_NONBLOCK = 0o4000
const SOCK_CLOEXEC = 0o2000000
const SOL_SOCKET = 1
const SO_REUSEADDR = 2
const SO_MARK = 36
const SOCKADDR_IN_BYTES = 16
/** Node's own default backlog. */
const DEFAULT_BACKLOG = 511

export interface NetnsListenOptions {
  /** An IPv4 address of the namespace, or 0.0.0.0. */
  host: string
  /** 0 picks a free port; `NetnsListener.port` says which. */
  port: number
  /** Default 511, as Node's; give the same to `server.listen({ fd, backlog })`, which calls listen(2) again. */
  backlog?: number
}

export interface NetnsListener {
  /** A listening socket, non-blocking and close-on-exec: hand it to `net.Server.listen({ fd })`, which then owns it. */
  readonly fd: number
  readonly host: string
  /** The port bound (the one picked when asked for 0). */
  readonly port: number
}

export interface NetnsSocketOptions {
  /** SO_MARK (a 32-bit firewall mark) for the socket's packets; needs CAP_NET_ADMIN. */
  mark?: number
}

export interface NetnsConnectOptions extends NetnsSocketOptions {
  /** An IPv4 literal (see above). */
  host: string
  port: number
  /** Give up connecting after this long: the socket is destroyed with ERR_NETNS_CONNECT_TIMEOUT. */
  timeoutMs?: number
  noDelay?: boolean
}

function invalid (message: string): NetnsError {
  return new NetnsError('ERR_NETNS_ADDRESS_INVALID', message)
}

function checkHost (host: string): void {
  if (!isIPv4(host)) throw invalid(`${JSON.stringify(host)} is not an IPv4 address literal (names are resolved before a socket is made in a namespace; IPv6 is not supported yet)`)
}

function checkInteger (name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) throw invalid(`${name} must be an integer from ${min} to ${max}, got ${value}`)
}

function checkMark (mark: number | undefined): void {
  if (mark !== undefined) checkInteger('mark', mark, 0, 0xffffffff)
}

function sockaddrIn (host: string, port: number): Buffer {
  const address = Buffer.alloc(SOCKADDR_IN_BYTES)
  address.writeUInt16LE(AF_INET, 0) // sa_family in host order (little-endian on x86_64 and aarch64)
  address.writeUInt16BE(port, 2)
  host.split('.').forEach((octet, i) => { address[4 + i] = Number(octet) })
  return address
}

/** What to check when a call fails, by errno; the default is the errno's name. */
function hint (syscall: string, errno: string, what: string, ns: NetnsHandle): string {
  if (errno === 'EADDRINUSE') return `another socket in network namespace ${ns.path} already uses ${what}`
  if (errno === 'EADDRNOTAVAIL') return `${what} is not an address of network namespace ${ns.path} (ip -n <name> addr)`
  if (errno === 'EACCES' && syscall === 'bind') return `ports below 1024 need CAP_NET_BIND_SERVICE (${what})`
  if (errno === 'EPERM' && what.startsWith('SO_MARK')) return `EPERM: setting SO_MARK needs CAP_NET_ADMIN (${what})`
  if (errno === 'EMFILE' || errno === 'ENFILE') return 'out of file descriptors (raise the limit: LimitNOFILE, ulimit -n)'
  return `${errno} (${what})`
}

/** Failures of the system, not of the caller's arguments: connect() reports them as 'error' events, as Node does. */
function isSystemFailure (error: unknown): boolean {
  const code = (error as NetnsError | undefined)?.code
  return code === 'ERR_NETNS_SOCKET' || code === 'ERR_NETNS_ENTER'
}

/** Makes sockets inside network namespaces; binds libc once, at construction. */
export class NetnsSockets {
  readonly #netns: Netns
  readonly #libc: Libc

  constructor (netns: Netns) {
    this.#netns = netns
    this.#libc = bindLibc()
  }

  /** A listening TCP socket on host:port inside `ns`. */
  listen (ns: NetnsHandle, options: NetnsListenOptions): NetnsListener {
    const { host, port, backlog = DEFAULT_BACKLOG } = options
    checkHost(host)
    checkInteger('port', port, 0, 65535)
    checkInteger('backlog', backlog, 1, 0x7fffffff)
    const fd = this.#netns.within(ns, () => this.#configured(ns, fd => {
      this.#call(ns, 'setsockopt', `SO_REUSEADDR on ${host}:${port}`, this.#libc.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, int32(1), 4))
      this.#call(ns, 'bind', `${host}:${port}`, this.#libc.bind(fd, sockaddrIn(host, port), SOCKADDR_IN_BYTES))
      this.#call(ns, 'listen', `${host}:${port}`, this.#libc.listen(fd, backlog))
    }))
    try {
      return { fd, host, port: this.localAddress(fd, ns).port }
    } catch (error) {
      this.#libc.close(fd)
      throw error
    }
  }

  /** An unconnected TCP socket inside `ns` (non-blocking, close-on-exec), marked if asked; the caller owns it. */
  socket (ns: NetnsHandle, options: NetnsSocketOptions = {}): number {
    const { mark } = options
    checkMark(mark)
    return this.#netns.within(ns, () => this.#configured(ns, fd => {
      if (mark !== undefined) {
        this.#call(ns, 'setsockopt', `SO_MARK ${mark}`, this.#libc.setsockopt(fd, SOL_SOCKET, SO_MARK, uint32(mark), 4))
      }
    }))
  }

  /**
   * A net.Socket connecting to host:port from inside `ns` (from the namespace's address, with its routes and
   * firewall, carrying `mark`). Returned while connecting: writes wait in its buffer; failures are 'error' events,
   * including a socket that could not be made (ERR_NETNS_SOCKET, ERR_NETNS_ENTER), as with net.connect. Bad
   * arguments, and misuse or a failed return of Netns (ERR_NETNS_RETURN is fatal), are thrown.
   */
  connect (ns: NetnsHandle, options: NetnsConnectOptions): Socket {
    const { host, port, timeoutMs } = options
    checkHost(host)
    checkInteger('port', port, 1, 65535)
    if (timeoutMs !== undefined) checkInteger('timeoutMs', timeoutMs, 1, 0x7fffffff)
    let fd: number
    try {
      fd = this.socket(ns, options)
    } catch (error) {
      if (!isSystemFailure(error)) throw error
      const failed = new Socket()
      process.nextTick(() => { failed.destroy(error as Error) })
      return failed
    }
    let socket: Socket
    try {
      socket = new Socket({ fd })
    } catch (error) {
      this.#libc.close(fd)
      throw new NetnsError('ERR_NETNS_SOCKET', `Node could not adopt the socket made in network namespace ${ns.path}: ${(error as Error).message}`, { cause: error })
    }
    // Same tick as the construction (see above); the connect itself starts on the next tick, still before any poll.
    try {
      if (options.noDelay === true) socket.setNoDelay(true)
      socket.connect({ host, port })
    } catch (error) {
      socket.destroy()
      throw error
    }
    if (timeoutMs !== undefined) {
      const timer = setTimeout(() => {
        socket.destroy(new NetnsError('ERR_NETNS_CONNECT_TIMEOUT', `connecting to ${host}:${port} from network namespace ${ns.path} took over ${timeoutMs} ms`))
      }, timeoutMs)
      const stop = (): void => { clearTimeout(timer) }
      socket.once('connect', stop).once('close', stop)
    }
    return socket
  }

  /** The IPv4 address and port a socket is bound to (getsockname). */
  localAddress (fd: number, ns?: NetnsHandle): { host: string, port: number } {
    const address = Buffer.alloc(SOCKADDR_IN_BYTES)
    const length = uint32(SOCKADDR_IN_BYTES)
    if (this.#libc.getsockname(fd, address, length) !== 0) {
      const errno = errnoName(this.#libc.errno())
      throw new NetnsError('ERR_NETNS_SOCKET', `getsockname(${fd})${ns === undefined ? '' : ` in ${ns.path}`} failed: ${errno}`, { failure: { errno, syscall: 'getsockname' } })
    }
    return { host: [...address.subarray(4, 8)].join('.'), port: address.readUInt16BE(2) }
  }

  /** Creates a socket (inside within) and runs `configure` on it, closing it if anything fails. */
  #configured (ns: NetnsHandle, configure: (fd: number) => void): number {
    const fd = this.#libc.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
    this.#call(ns, 'socket', 'a TCP socket', fd)
    try {
      configure(fd)
      return fd
    } catch (error) {
      this.#libc.close(fd)
      throw error
    }
  }

  /** Throws ERR_NETNS_SOCKET if a libc call returned -1, reading errno before anything else can change it. */
  #call (ns: NetnsHandle, syscall: string, what: string, result: number): void {
    if (result >= 0) return
    const errno = errnoName(this.#libc.errno())
    throw new NetnsError('ERR_NETNS_SOCKET', `${syscall} in network namespace ${ns.path} failed: ${hint(syscall, errno, what, ns)}`, { failure: { errno, syscall } })
  }
}

function int32 (value: number): Buffer {
  const buffer = Buffer.alloc(4)
  buffer.writeInt32LE(value)
  return buffer
}

function uint32 (value: number): Buffer {
  const buffer = Buffer.alloc(4)
  buffer.writeUInt32LE(value)
  return buffer
}
