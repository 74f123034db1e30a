/**
 * What "one request per connection" costs on a path, counted rather than assumed: requests with
 * `Connection: close` sent one after the other, reusing a connection only when the response allows it (as wrk
 * does). Each goes to HELD_PATH, which the backend passes on to a holder in this process, which reads the kernel's
 * socket table (`ss`) for every listening port along the path before it answers: while the request is in
 * flight, every connection it uses is open, however the proxies close them afterwards (a reset leaves no trace).
 * A TCP proxy must open a new upstream connection per client connection; an HTTP proxy may keep pooled ones, and
 * this shows whether it does.
 */
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import type { Socket } from 'node:net'
import { HELD_PATH } from './configs'
import { execText } from './processes'
import { ResponseParser, closesConnection } from './http-response'
import type { Response } from './http-response'

export interface ConnectionAudit {
  readonly requests: number
  /** Every response said `Connection: close`, so wrk opens a new connection for every request. */
  readonly closesEveryResponse: boolean
  /** New connections per request at each listening port along the path, in order (the backend last). */
  readonly perRequest: readonly number[]
}

/** One socket of `ss -Htane`: which audited port it touches, its connection (both ends, sorted) and its cookie. */
export interface SocketEntry { readonly port: number, readonly connection: string, readonly cookie: string }

export function parseSockets (output: string, ports: readonly number[]): SocketEntry[] {
  const entries: SocketEntry[] = []
  for (const line of output.split('\n')) {
    const cols = line.trim().split(/\s+/)
    const cookie = /\bsk:([0-9a-f]+)/.exec(line)?.[1]
    if (cols.length < 5 || cols[0] === 'LISTEN' || cookie === undefined) continue
    const ends = [cols[3], cols[4]]
    const port = ends.map(end => Number(end.slice(end.lastIndexOf(':') + 1))).find(p => ports.includes(p))
    if (port !== undefined) entries.push({ port, connection: ends.sort().join(' '), cookie })
  }
  return entries
}

/**
 * Counts connections across snapshots of the socket table. A connection closed by the connecting side stays in
 * TIME-WAIT, and on loopback Linux reuses such an address pair for a new connection to the same port: the pair
 * alone would count the two as one. The socket cookie tells them apart: an open connection keeps its sockets'
 * cookies (and TIME-WAIT keeps the closing socket's), a new connection's sockets get new ones.
 */
export class ConnectionCounter {
  private readonly known = new Map<string, Set<string>>()
  readonly counts: number[]

  constructor (private readonly ports: readonly number[]) {
    this.counts = ports.map(() => 0)
  }

  /** Records a snapshot; connections not seen before are counted unless this is the baseline. */
  observe (entries: readonly SocketEntry[], baseline = false): void {
    const snapshot = new Map<string, { port: number, cookies: Set<string> }>()
    for (const { port, connection, cookie } of entries) {
      const seen = snapshot.get(connection) ?? { port, cookies: new Set<string>() }
      seen.cookies.add(cookie)
      snapshot.set(connection, seen)
    }
    for (const [connection, { port, cookies }] of snapshot) {
      const before = this.known.get(connection) ?? new Set<string>()
      if (!baseline && ![...cookies].some(cookie => before.has(cookie))) this.counts[this.ports.indexOf(port)]++
      this.known.set(connection, new Set([...before, ...cookies]))
    }
  }
}

async function socketTable (ports: readonly number[]): Promise<SocketEntry[]> {
  const filter = ports.map(port => `sport = :${port} or dport = :${port}`).join(' or ')
  return parseSockets(await execText('ss', ['-Htane', `( ${filter} )`]), ports)
}

async function open (host: string, port: number): Promise<Socket> {
  const socket = connect(port, host)
  socket.on('error', () => {}) // shows as 'close', which exchange() reports
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve).once('error', reject) })
  return socket
}

async function exchange (socket: Socket, request: string, what: string): Promise<Response> {
  const parser = new ResponseParser()
  return await new Promise<Response>((resolve, reject) => {
    const timer = setTimeout(() => { cleanUp(); reject(new Error(`no response from ${what} in 5 s`)) }, 5000)
    const onData = (chunk: Buffer): void => {
      try {
        const [response] = parser.feed(chunk)
        if (response !== undefined) { cleanUp(); resolve(response) }
      } catch (err) {
        cleanUp()
        reject(err instanceof Error ? err : new Error(String(err)))
      }
    }
    const onClose = (): void => { cleanUp(); reject(new Error(`${what} closed the connection before answering`)) }
    const cleanUp = (): void => { clearTimeout(timer); socket.off('data', onData).off('close', onClose) }
    socket.on('data', onData).on('close', onClose)
    socket.write(request)
  })
}

/** The backend's upstream for HELD_PATH: runs `during` (a snapshot) before it answers each request. */
export interface Holder { readonly port: number, during: () => Promise<void>, close: () => Promise<void> }

export async function startHolder (): Promise<Holder> {
  const server: Server = createServer((_req, res) => {
    const answer = (status: number, text: string): void => { res.writeHead(status, { 'content-length': Buffer.byteLength(text) }).end(text) }
    holder.during().then(() => { answer(200, 'held\n') }, (err: unknown) => { answer(500, String(err)) })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const holder: Holder = {
    port: (server.address() as AddressInfo).port,
    during: async () => {},
    close: async () => {
      if (!server.listening) return
      const closed = once(server, 'close')
      server.closeAllConnections()
      server.close()
      await closed
    }
  }
  return holder
}

/** `url`: the path's entry; `ports`: the listening ports along the path, the client-facing one first. */
export async function auditNewConnections (url: string, ports: readonly number[], holder: Holder, requests = 20): Promise<ConnectionAudit> {
  const { hostname, port } = new URL(url)
  const request = `GET ${HELD_PATH} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nConnection: close\r\n\r\n`
  const counter = new ConnectionCounter(ports)
  counter.observe(await socketTable(ports), true)
  let failure: unknown
  holder.during = async () => {
    try {
      counter.observe(await socketTable(ports))
    } catch (err) {
      failure ??= err
      throw err
    }
  }
  let closesEveryResponse = true
  let socket: Socket | undefined
  try {
    for (let i = 0; i < requests; i++) {
      socket ??= await open(hostname, Number(port))
      const response = await exchange(socket, request, url)
      if (response.status !== 200) throw failure instanceof Error ? failure : new Error(`${url} answered ${response.status} to the connection audit`)
      const closes = closesConnection(response)
      closesEveryResponse &&= closes
      if (closes || socket.destroyed || socket.readyState !== 'open') {
        socket.destroy()
        socket = undefined
      }
    }
  } finally {
    socket?.destroy()
    holder.during = async () => {}
  }
  return { requests, closesEveryResponse, perRequest: counter.counts.map(n => n / requests) }
}
