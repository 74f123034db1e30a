/**
 * Just enough RFC 6455 for sidecar tests (not a test itself; no WebSocket library is installed): the handshake's
 * accept value, single-frame encoding and decoding (FIN set, no extensions, payloads under 64 KiB), an app that
 * answers upgrades and echoes text frames, and a reader that takes parsed pieces off a socket as bytes arrive.
 */
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { IncomingHttpHeaders, Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
export const OPCODE_TEXT = 0x1
export const OPCODE_CLOSE = 0x8

/** Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 §4.2.2). */
export function acceptKey (key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64')
}

/** XORs `data` with the 4-byte masking key (masking and unmasking are the same), into a new buffer. */
function mask4 (data: Buffer, key: Buffer): Buffer {
  const out = Buffer.from(data)
  for (let i = 0; i < out.length; i++) out[i] ^= key[i % 4]
  return out
}

/** One final frame; masked (as a client must send) when `mask` is true. */
export function encodeFrame (opcode: number, payload: Buffer | string, mask: boolean): Buffer {
  const data = Buffer.from(payload)
  if (data.length > 0xffff) throw new RangeError('frames over 64 KiB are not supported here')
  const extended = data.length < 126 ? Buffer.alloc(0) : Buffer.from([data.length >> 8, data.length & 0xff])
  const head = Buffer.from([0x80 | opcode, (mask ? 0x80 : 0) | (data.length < 126 ? data.length : 126)])
  if (!mask) return Buffer.concat([head, extended, data])
  const key = randomBytes(4)
  return Buffer.concat([head, extended, key, mask4(data, key)])
}

export interface Frame { fin: boolean, opcode: number, masked: boolean, payload: Buffer }

/** The first frame in `buffer` (unmasked) and how many bytes it took; undefined until it is complete. */
export function decodeFrame (buffer: Buffer): { value: Frame, used: number } | undefined {
  if (buffer.length < 2) return undefined
  const masked = (buffer[1] & 0x80) !== 0
  let length = buffer[1] & 0x7f
  let offset = 2
  if (length === 127) throw new RangeError('64-bit frame lengths are not supported here')
  if (length === 126) {
    if (buffer.length < 4) return undefined
    length = buffer.readUInt16BE(2)
    offset = 4
  }
  const start = offset + (masked ? 4 : 0)
  if (buffer.length < start + length) return undefined
  const payload = mask4(buffer.subarray(start, start + length), masked ? buffer.subarray(offset, start) : Buffer.alloc(4))
  return { value: { fin: (buffer[0] & 0x80) !== 0, opcode: buffer[0] & 0x0f, masked, payload }, used: start + length }
}

export interface ResponseHead { line: string, status: number, headers: Record<string, string> }

/** An HTTP/1.1 response head (status line and headers, lower-cased names) at the start of `buffer`. */
export function decodeResponseHead (buffer: Buffer): { value: ResponseHead, used: number } | undefined {
  const end = buffer.indexOf('\r\n\r\n')
  if (end === -1) return undefined
  const [statusLine, ...lines] = buffer.subarray(0, end).toString('latin1').split('\r\n')
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const colon = line.indexOf(':')
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
  }
  return { value: { line: statusLine, status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1]), headers }, used: end + 4 }
}

/** Collects what a socket receives; `take` waits until a parser finds a whole piece, then removes it. */
export class SocketReader {
  buffer = Buffer.alloc(0)
  closed = false
  #wake: (() => void) | undefined

  constructor (socket: Duplex) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk])
      this.#wake?.()
    })
    socket.on('close', () => {
      this.closed = true
      this.#wake?.()
    })
  }

  async take<T> (parse: (buffer: Buffer) => { value: T, used: number } | undefined, ms = 3000): Promise<T> {
    const deadline = Date.now() + ms
    for (;;) {
      const parsed = parse(this.buffer)
      if (parsed !== undefined) {
        this.buffer = this.buffer.subarray(parsed.used)
        return parsed.value
      }
      if (this.closed) throw new Error(`the connection closed first; unparsed: ${JSON.stringify(this.buffer.toString('latin1'))}`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out; unparsed: ${JSON.stringify(this.buffer.toString('latin1'))}`)
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, left)
        this.#wake = () => {
          clearTimeout(timer)
          resolve()
        }
      })
    }
  }
}

/** A client's upgrade request for `path`, with a fresh key (returned for checking the accept value). */
export function upgradeRequest (host: string, path: string, headers: Record<string, string> = {}): { text: string, key: string } {
  const key = randomBytes(16).toString('base64')
  const lines = [`GET ${path} HTTP/1.1`, `Host: ${host}`, 'Upgrade: websocket', 'Connection: Upgrade', `Sec-WebSocket-Key: ${key}`, 'Sec-WebSocket-Version: 13',
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`)]
  return { text: `${lines.join('\r\n')}\r\n\r\n`, key }
}

export interface SeenUpgrade { url?: string, headers: IncomingHttpHeaders }

/**
 * A WebSocket echo app on loopback: answers an upgrade with 101, echoes text frames (unmasked, as a server sends),
 * answers a close frame with one and ends. Plain requests get 426. `sockets` are the upgraded connections.
 */
export async function websocketEchoApp (): Promise<{ server: Server, port: number, seen: SeenUpgrade[], sockets: Duplex[] }> {
  const seen: SeenUpgrade[] = []
  const sockets: Duplex[] = []
  const server = createServer((_req, res) => { res.writeHead(426, { upgrade: 'websocket' }).end() })
  server.on('upgrade', (req, socket: Duplex, head: Buffer) => {
    seen.push({ url: req.url, headers: req.headers })
    socket.on('error', () => { socket.destroy() })
    const key = req.headers['sec-websocket-key']
    if (req.headers.upgrade?.toLowerCase() !== 'websocket' || typeof key !== 'string') {
      socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n')
      return
    }
    sockets.push(socket)
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`)
    let pending = Buffer.from(head)
    const onData = (chunk: Buffer): void => {
      pending = Buffer.concat([pending, chunk])
      for (let frame = decodeFrame(pending); frame !== undefined; frame = decodeFrame(pending)) {
        pending = pending.subarray(frame.used)
        if (frame.value.opcode === OPCODE_TEXT) socket.write(encodeFrame(OPCODE_TEXT, frame.value.payload, false))
        if (frame.value.opcode === OPCODE_CLOSE) socket.end(encodeFrame(OPCODE_CLOSE, frame.value.payload, false))
      }
    }
    socket.on('data', onData)
    // The connection ended without a close frame (the sidecar cut it): a WebSocket server closes its side too.
    socket.on('end', () => { socket.end() })
    onData(Buffer.alloc(0))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { server, port: (server.address() as AddressInfo).port, seen, sockets }
}
