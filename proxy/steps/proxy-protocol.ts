/**
 * PROXY protocol v2 (haproxy's proxy-protocol.txt §2.2) for non-HTTP apps that want to know the caller: the peer's
 * address, and TLVs saying the connection was mutual TLS (PP2_TYPE_SSL with the version) and carrying the peer's
 * verified SPIFFE ID in the first custom TLV type, 0xE0 (PP2_TYPE_MIN_CUSTOM), as UTF-8.
 */
import { isIPv4 } from 'node:net'
import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import type { SpiffeId } from '../../spiffe/id'

export const PROXY_V2_SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex')
const VERSION_PROXY = 0x21
const TCP_OVER_IPV4 = 0x11
const TCP_OVER_IPV6 = 0x21
const UNSPEC = 0x00
const PP2_TYPE_SSL = 0x20
const PP2_SUBTYPE_SSL_VERSION = 0x21
/** PP2_CLIENT_SSL | PP2_CLIENT_CERT_CONN | PP2_CLIENT_CERT_SESS: TLS, with a client certificate that verified. */
const CLIENT_FLAGS = 0x07
export const PP2_TYPE_SPIFFE_ID = 0xe0

function tlv (type: number, value: Buffer): Buffer {
  const header = Buffer.alloc(3)
  header.writeUInt8(type, 0)
  header.writeUInt16BE(value.length, 1)
  return Buffer.concat([header, value])
}

function ipv4 (address: string): Buffer {
  return Buffer.from(address.split('.').map(Number))
}

/** 16 bytes of an IPv6 address; a zone (`%eth0`) is dropped, an embedded IPv4 tail (`::ffff:1.2.3.4`) converted. */
function ipv6 (text: string): Buffer {
  const address = text.split('%')[0].replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_m, a: string, b: string, c: string, d: string) =>
    `${((Number(a) << 8) | Number(b)).toString(16)}:${((Number(c) << 8) | Number(d)).toString(16)}`)
  const [head, tail = ''] = address.split('::')
  const groups = (part: string): string[] => part === '' ? [] : part.split(':')
  const missing = 8 - groups(head).length - groups(tail).length
  const all = [...groups(head), ...Array<string>(address.includes('::') ? missing : 0).fill('0'), ...groups(tail)]
  return Buffer.from(all.map(g => g.padStart(4, '0')).join(''), 'hex')
}

/** The two ends of a TCP connection, as a PROXY header names them. */
export interface ConnectionEnds { readonly source: string, readonly sourcePort: number, readonly destination: string, readonly destinationPort: number }

/** The address block: IPv4-mapped IPv6 addresses are sent as IPv4; mixed families as UNSPEC (no addresses). */
function addressBlock (ends: ConnectionEnds): { family: number, block: Buffer } {
  const unmap = (a: string): string => a.replace(/^::ffff:(?=\d+\.)/, '')
  const [src, dst] = [unmap(ends.source), unmap(ends.destination)]
  const ports = Buffer.alloc(4)
  ports.writeUInt16BE(ends.sourcePort, 0)
  ports.writeUInt16BE(ends.destinationPort, 2)
  if (isIPv4(src) && isIPv4(dst)) return { family: TCP_OVER_IPV4, block: Buffer.concat([ipv4(src), ipv4(dst), ports]) }
  if (src.includes(':') && dst.includes(':')) return { family: TCP_OVER_IPV6, block: Buffer.concat([ipv6(src), ipv6(dst), ports]) }
  return { family: UNSPEC, block: Buffer.alloc(0) }
}

/** A PROXY protocol v2 header (command PROXY) naming `ends`, followed by `tlvs`. */
export function encodeProxyHeaderV2 (ends: ConnectionEnds, tlvs: Buffer): Buffer {
  const { family, block } = addressBlock(ends)
  const header = Buffer.alloc(4)
  header.writeUInt8(VERSION_PROXY, 0)
  header.writeUInt8(family, 1)
  header.writeUInt16BE(block.length + tlvs.length, 2)
  return Buffer.concat([PROXY_V2_SIGNATURE, header, block, tlvs])
}

/**
 * The header a proxy sends its app: the peer's address, and the peer's verified SPIFFE ID. The TLS TLV only for a
 * peer that came over mutual TLS: node mode hands a same-device caller over inside the process, verified by the
 * namespace it called from.
 */
export function proxyHeaderV2 (socket: Socket, peer: SpiffeId): Buffer {
  const ends = { source: socket.remoteAddress ?? '', sourcePort: socket.remotePort ?? 0, destination: socket.localAddress ?? '', destinationPort: socket.localPort ?? 0 }
  const id = tlv(PP2_TYPE_SPIFFE_ID, Buffer.from(peer.toString(), 'utf8'))
  const protocol = (socket as Partial<TLSSocket>).getProtocol?.()
  if (protocol === undefined) return encodeProxyHeaderV2(ends, id)
  const sslValue = Buffer.concat([Buffer.from([CLIENT_FLAGS, 0, 0, 0, 0]), tlv(PP2_SUBTYPE_SSL_VERSION, Buffer.from(protocol ?? ''))])
  return encodeProxyHeaderV2(ends, Buffer.concat([tlv(PP2_TYPE_SSL, sslValue), id]))
}
