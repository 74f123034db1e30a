/**
 * SO_ORIGINAL_DST: where a connection redirected by iptables (nat REDIRECT) was going before the redirect. The
 * transparent listeners read it to know the app's real destination (outbound) or port (inbound). Node has no API
 * for it, so libc's getsockopt is called through koffi (level SOL_IP 0, option 80 → a sockaddr_in). koffi is loaded
 * only by transparent listeners: a sidecar without them stays smaller.
 */
import type { Socket } from 'node:net'
import type Koffi from 'koffi'
import type { HostPort } from '../host-port'

const SOL_IP = 0
const SO_ORIGINAL_DST = 80
const SOCKADDR_IN_BYTES = 16

type GetSockOpt = (fd: number, level: number, option: number, out: Array<number[] | null>, length: number[]) => number

/** The IPv4 destination a socket had before iptables redirected it, or why it cannot be read. */
export type OriginalDestination = (socket: Socket) => HostPort | string

/** Binds libc's getsockopt (once per listener) and returns the reader of original destinations. */
export function originalDestinationReader (): OriginalDestination {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded lazily on purpose (see above)
  const koffi = require('koffi') as typeof Koffi
  const getsockopt = koffi.load('libc.so.6').func('getsockopt', 'int', ['int', 'int', 'int', koffi.out(koffi.pointer(koffi.array('uint8_t', SOCKADDR_IN_BYTES, 'Array'))), koffi.inout(koffi.pointer('uint32_t'))]) as GetSockOpt
  return socket => {
    // A TLS socket's own handle is the TLS layer; the file descriptor is on the TCP socket beneath it.
    const withFd = socket as unknown as { _handle?: { fd?: unknown }, _parent?: { _handle?: { fd?: unknown } } }
    const fd = typeof withFd._handle?.fd === 'number' && withFd._handle.fd >= 0 ? withFd._handle.fd : withFd._parent?._handle?.fd
    if (typeof fd !== 'number' || fd < 0) return 'the socket has no file descriptor'
    // koffi writes an output array into the first slot of the box it is given.
    const box: Array<number[] | null> = [null]
    if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, box, [SOCKADDR_IN_BYTES]) !== 0 || box[0] === null) {
      return `getsockopt(SO_ORIGINAL_DST) failed with errno ${koffi.errno()} (not redirected by iptables, or not IPv4)`
    }
    const address = box[0] // sockaddr_in: family (2 bytes), port (network order), IPv4 address, padding
    return { host: address.slice(4, 8).join('.'), port: (address[2] << 8) | address[3] }
  }
}
