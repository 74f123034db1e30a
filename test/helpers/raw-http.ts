/**
 * HTTP/1.1 on raw sockets for proxy tests (not a test itself): a client that writes exact bytes and parses the
 * responses off the wire (Content-Length, chunked and close-delimited bodies; no body for HEAD, 1xx, 204 and 304),
 * every read bounded by a timeout so that a regression fails instead of hanging, and a scripted server that
 * answers each request it parses with exact bytes.
 */
import { once } from 'node:events'
import { connect, createServer } from 'node:net'
import type { AddressInfo, Server, Socket } from 'node:net'

export interface Message {
  /** The status line or the request line. */
  line: string
  /** Lower-cased names; repeated fields joined with ', '. */
  headers: Record<string, string>
  /** Every field as sent: [name, value]. */
  fields: Array<[string, string]>
  body: Buffer
  /** How the body was delimited. */
  framing: 'none' | 'length' | 'chunked' | 'close'
  /** The sizes of the chunks of a chunked body, in order. */
  chunks: number[]
  /** The trailer fields of a chunked body, as sent: [name, value]. */
  trailers: Array<[string, string]>
}

export interface RawResponse extends Message { status: number }
export interface RawRequest extends Message { method: string, target: string }

type Parsed<T> = { value: T, used: number } | undefined

/** The head (start line and fields) at the start of `buffer`, or undefined until it is complete. */
function parseHead (buffer: Buffer): Parsed<Pick<Message, 'line' | 'headers' | 'fields'>> {
  const end = buffer.indexOf('\r\n\r\n')
  if (end === -1) return undefined
  const [line, ...lines] = buffer.subarray(0, end).toString('latin1').split('\r\n')
  const fields: Array<[string, string]> = []
  const headers: Record<string, string> = {}
  for (const text of lines) {
    const colon = text.indexOf(':')
    if (colon <= 0) throw new Error(`malformed field line ${JSON.stringify(text)}`)
    const name = text.slice(0, colon)
    const value = text.slice(colon + 1).trim()
    fields.push([name, value])
    const key = name.toLowerCase()
    headers[key] = key in headers ? `${headers[key]}, ${value}` : value
  }
  return { value: { line, headers, fields }, used: end + 4 }
}

/** A chunked body starting at `from`; undefined until its last chunk and trailer section are in. */
function parseChunked (buffer: Buffer, from: number): Parsed<{ body: Buffer, chunks: number[], trailers: Array<[string, string]> }> {
  const parts: Buffer[] = []
  const chunks: number[] = []
  const trailers: Array<[string, string]> = []
  let at = from
  for (;;) {
    const eol = buffer.indexOf('\r\n', at)
    if (eol === -1) return undefined
    const sizeText = buffer.subarray(at, eol).toString('latin1').split(';')[0].trim()
    if (!/^[0-9a-f]+$/i.test(sizeText)) throw new Error(`bad chunk size line ${JSON.stringify(buffer.subarray(at, eol).toString('latin1'))}`)
    const size = parseInt(sizeText, 16)
    at = eol + 2
    if (size === 0) break
    if (buffer.length < at + size + 2) return undefined
    if (buffer.toString('latin1', at + size, at + size + 2) !== '\r\n') throw new Error('a chunk does not end with CRLF')
    parts.push(buffer.subarray(at, at + size))
    chunks.push(size)
    at += size + 2
  }
  for (;;) { // the trailer section: field lines up to an empty line
    const eol = buffer.indexOf('\r\n', at)
    if (eol === -1) return undefined
    const line = buffer.toString('latin1', at, eol)
    at = eol + 2
    if (line === '') return { value: { body: Buffer.concat(parts), chunks, trailers }, used: at }
    const colon = line.indexOf(':')
    if (colon <= 0) throw new Error(`malformed trailer line ${JSON.stringify(line)}`)
    trailers.push([line.slice(0, colon), line.slice(colon + 1).trim()])
  }
}

function parseMessage (buffer: Buffer, bodiless: (head: Pick<Message, 'line' | 'headers'>) => boolean, ended: boolean, isRequest: boolean): Parsed<Message> {
  const head = parseHead(buffer)
  if (head === undefined) return undefined
  const start = head.used
  const message = { ...head.value, body: Buffer.alloc(0), chunks: [] as number[], trailers: [] as Array<[string, string]> }
  if (bodiless(head.value)) return { value: { ...message, framing: 'none' }, used: start }
  const te = head.value.headers['transfer-encoding']
  if (te !== undefined) {
    if (te.split(',').at(-1)?.trim().toLowerCase() === 'chunked') {
      const chunked = parseChunked(buffer, start)
      return chunked === undefined ? undefined : { value: { ...message, ...chunked.value, framing: 'chunked' }, used: chunked.used }
    }
    if (isRequest) throw new Error(`a request with transfer-encoding ${te} but not chunked last`)
  } else if (head.value.headers['content-length'] !== undefined) {
    const text = head.value.headers['content-length']
    if (!/^\d+$/.test(text)) throw new Error(`bad content-length ${JSON.stringify(text)}`)
    const length = Number(text)
    if (buffer.length < start + length) return undefined
    return { value: { ...message, body: buffer.subarray(start, start + length), framing: 'length' }, used: start + length }
  } else if (isRequest) {
    return { value: { ...message, framing: 'none' }, used: start }
  }
  // A response without framing ends when the connection does.
  return ended ? { value: { ...message, body: buffer.subarray(start), framing: 'close' }, used: buffer.length } : undefined
}

/** The first response in `buffer` (`head`: it answers a HEAD request); `ended`: no more bytes will come. */
export function parseResponse (buffer: Buffer, head = false, ended = false): Parsed<RawResponse> {
  const bodiless = ({ line }: { line: string }): boolean => head || /^HTTP\/\d\.\d (1\d\d|204|304)\b/.test(line)
  const parsed = parseMessage(buffer, bodiless, ended, false)
  if (parsed === undefined) return undefined
  const status = /^HTTP\/\d\.\d (\d{3})/.exec(parsed.value.line)?.[1]
  if (status === undefined) throw new Error(`not a status line: ${JSON.stringify(parsed.value.line)}`)
  return { value: { ...parsed.value, status: Number(status) }, used: parsed.used }
}

/** The first request in `buffer`. */
export function parseRequest (buffer: Buffer): Parsed<RawRequest> {
  const parsed = parseMessage(buffer, () => false, false, true)
  if (parsed === undefined) return undefined
  const [method, target = ''] = parsed.value.line.split(' ')
  return { value: { ...parsed.value, method, target }, used: parsed.used }
}

/** Collects what a socket receives; `take` waits (at most `ms`) until a parser finds a whole piece, then removes it. */
export class RawConnection {
  buffer = Buffer.alloc(0)
  /** The peer ended the connection, or it failed (`error`). */
  ended = false
  error: Error | undefined
  #wake: (() => void) | undefined

  constructor (readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk])
      this.#wake?.()
    })
    const end = (): void => {
      this.ended = true
      this.#wake?.()
    }
    socket.on('end', end).on('close', end).on('error', (err: Error) => {
      this.error = err
      end()
    })
  }

  static async open (port: number, host = '127.0.0.1'): Promise<RawConnection> {
    const connection = new RawConnection(connect(port, host))
    await Promise.race([once(connection.socket, 'connect'), once(connection.socket, 'close')])
    if (connection.error !== undefined) throw connection.error
    return connection
  }

  write (data: string | Buffer): void {
    this.socket.write(data)
  }

  async take<T> (parse: (buffer: Buffer, ended: boolean) => Parsed<T>, ms = 5000): Promise<T> {
    const deadline = Date.now() + ms
    for (;;) {
      const parsed = parse(this.buffer, this.ended)
      if (parsed !== undefined) {
        this.buffer = this.buffer.subarray(parsed.used)
        return parsed.value
      }
      const unparsed = JSON.stringify(this.buffer.subarray(0, 300).toString('latin1'))
      if (this.ended) throw new Error(`the connection ended first${this.error === undefined ? '' : ` (${this.error.message})`}; unparsed: ${unparsed}`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out after ${ms} ms; unparsed: ${unparsed}`)
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, left)
        this.#wake = () => {
          clearTimeout(timer)
          resolve()
        }
      })
    }
  }

  /** The next response (1xx included); `head`: it answers a HEAD request. */
  async response (head = false, ms = 5000): Promise<RawResponse> {
    return await this.take((buffer, ended) => parseResponse(buffer, head, ended), ms)
  }

  /** The next response that is not 1xx. */
  async finalResponse (ms = 5000): Promise<RawResponse> {
    for (;;) {
      const response = await this.response(false, ms)
      if (response.status >= 200) return response
    }
  }

  /** Whether the peer ends the connection within `ms` (bytes that arrive meanwhile stay in `buffer`). */
  async endsWithin (ms = 5000): Promise<boolean> {
    return await this.take((_buffer, ended) => ended ? { value: true, used: 0 } : undefined, ms).catch(() => false)
  }

  close (): void {
    this.socket.destroy()
  }
}

/** What a scripted server writes for a request: bytes (several writes when an array), then the end when `close`. */
export interface Reply { write: string | Buffer | Array<string | Buffer>, close?: boolean }

/** What a scripted server received: each request parsed, with the port it came from, and every byte, in order. */
export interface ScriptedRecord { seen: Array<RawRequest & { remotePort: number }>, received: Buffer[] }

/**
 * Serves one connection of a scripted server: parses its requests in turn, records each (and every byte as it
 * arrives), and answers each with the exact bytes `reply` gives. Plain or TLS: the socket is only read and written.
 */
export function serveScripted (socket: Socket, reply: (request: RawRequest) => Reply, record: ScriptedRecord): void {
  let buffer = Buffer.alloc(0)
  socket.on('error', () => { socket.destroy() })
  socket.on('data', (chunk: Buffer) => {
    record.received.push(chunk)
    buffer = Buffer.concat([buffer, chunk])
    for (;;) {
      let parsed
      try {
        parsed = parseRequest(buffer)
      } catch {
        socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n')
        return
      }
      if (parsed === undefined || socket.writableEnded) return
      buffer = buffer.subarray(parsed.used)
      record.seen.push({ ...parsed.value, remotePort: socket.remotePort ?? 0 })
      const { write, close = false } = reply(parsed.value)
      for (const piece of Array.isArray(write) ? write : [write]) socket.write(piece)
      if (close) socket.end()
    }
  })
}

/**
 * An HTTP/1.1 server on loopback that parses the requests of each connection in turn and answers each with the
 * exact bytes `reply` gives. Records each request with the port it came from, every byte received, and the open
 * connections.
 */
export async function scriptedServer (reply: (request: RawRequest) => Reply): Promise<ScriptedRecord & { server: Server, port: number, sockets: Set<Socket> }> {
  const record: ScriptedRecord = { seen: [], received: [] }
  const sockets = new Set<Socket>()
  const server = createServer(socket => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    serveScripted(socket, reply, record)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { server, port: (server.address() as AddressInfo).port, ...record, sockets }
}

/** A chunked body of the given chunks, with its last chunk. */
export function chunked (chunks: Array<string | Buffer>, extension = ''): Buffer {
  return Buffer.concat([...chunks.map(chunk => Buffer.concat([Buffer.from(`${Buffer.byteLength(chunk).toString(16)}${extension}\r\n`), Buffer.from(chunk), Buffer.from('\r\n')])), Buffer.from('0\r\n\r\n')])
}

/** A request's bytes: the request line, Host, `fields`, and `body` with a Content-Length unless a field frames it. */
export function requestBytes (method: string, target: string, fields: Array<[string, string]> = [], body?: string | Buffer, version = 'HTTP/1.1'): Buffer {
  const framed = fields.some(([name]) => /^(content-length|transfer-encoding)$/i.test(name))
  const all: Array<[string, string]> = [['Host', 'sidecar.test'], ...fields, ...(body === undefined || framed ? [] : [['Content-Length', String(Buffer.byteLength(body))] as [string, string]])]
  const head = `${method} ${target} ${version}\r\n${all.map(([name, value]) => `${name}: ${value}\r\n`).join('')}\r\n`
  return Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(body ?? '')])
}
