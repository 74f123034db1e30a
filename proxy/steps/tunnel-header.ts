/**
 * The tunnel header. In node mode the outbound side does not connect to the port the app called: it connects to
 * the destination app's tunnel port (the one port the app network admits between apps) and names the called port
 * in a PROXY protocol v2 header, the first bytes inside the mutual TLS — as Linkerd's transport header names the
 * target port. The inbound side reads it under a deadline and serves the connection as if it had arrived at that
 * port. The header comes from a verified peer, and the policy then decides at the port it names, exactly as for a
 * peer that connected to that port directly.
 */
import type { Socket } from 'node:net'
import type { HostPort } from '../host-port'
import { encodeProxyHeaderV2, PROXY_V2_SIGNATURE } from './proxy-protocol'

const FIXED_BYTES = 16
const COMMAND_PROXY = 0x21
/** Address block bytes and where the destination port sits in it, by family (TCP over IPv4, TCP over IPv6). */
const FAMILIES = new Map([[0x11, { bytes: 12, destinationPort: 10 }], [0x21, { bytes: 36, destinationPort: 34 }]])
/** Ours carries no TLVs; a peer's may carry a few, which are skipped. More than this is not a tunnel header. */
const MAX_LENGTH = 512

/** What the outbound side writes first: from the app's address to the destination it called. */
export function tunnelHeader (source: HostPort, destination: HostPort): Buffer {
  return encodeProxyHeaderV2({ source: source.host, sourcePort: source.port, destination: destination.host, destinationPort: destination.port }, Buffer.alloc(0))
}

/** The port a complete header names, `undefined` while more bytes are needed, or why these bytes are no header. */
export function parseTunnelHeader (bytes: Buffer): { port: number, length: number } | string | undefined {
  const prefix = Math.min(bytes.length, PROXY_V2_SIGNATURE.length)
  if (!bytes.subarray(0, prefix).equals(PROXY_V2_SIGNATURE.subarray(0, prefix))) return 'the connection did not start with a tunnel header (PROXY protocol v2)'
  if (bytes.length < FIXED_BYTES) return undefined
  if (bytes[12] !== COMMAND_PROXY) return `the tunnel header's version and command are 0x${bytes[12].toString(16)}, not PROXY (0x21)`
  const family = FAMILIES.get(bytes[13])
  if (family === undefined) return `the tunnel header's address family is 0x${bytes[13].toString(16)}, not TCP over IPv4 or IPv6`
  const length = bytes.readUInt16BE(14)
  if (length < family.bytes || length > MAX_LENGTH) return `the tunnel header's length ${length} is out of range (${family.bytes}–${MAX_LENGTH})`
  if (bytes.length < FIXED_BYTES + length) return undefined
  const port = bytes.readUInt16BE(FIXED_BYTES + family.destinationPort)
  if (port === 0) return 'the tunnel header names port 0'
  return { port, length: FIXED_BYTES + length }
}

/**
 * Reads the header from a new connection, within `timeoutMs`, then calls `done` with the port and leaves the bytes
 * after it in the socket for whoever serves the connection (who must start reading in `done`: the socket is
 * paused until then, and resumed after).
 */
export function readTunnelHeader (socket: Socket, timeoutMs: number, done: (result: { port: number } | { problem: string }) => void): void {
  let buffered: Buffer = Buffer.alloc(0)
  const finish = (result: { port: number } | { problem: string }, rest?: Buffer): void => {
    clearTimeout(timer)
    socket.off('data', onData).off('end', onEnd)
    socket.pause()
    if (rest !== undefined && rest.length > 0) socket.unshift(rest)
    done(result)
    if (!socket.destroyed) socket.resume()
  }
  const onData = (chunk: Buffer): void => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
    const parsed = parseTunnelHeader(buffered)
    if (parsed === undefined) return
    if (typeof parsed === 'string') finish({ problem: parsed })
    else finish({ port: parsed.port }, buffered.subarray(parsed.length))
  }
  const onEnd = (): void => { finish({ problem: 'the peer closed before its tunnel header was complete' }) }
  const timer = setTimeout(() => { finish({ problem: `no complete tunnel header within ${timeoutMs} ms` }) }, timeoutMs)
  socket.on('data', onData).once('end', onEnd)
}
