/**
 * A test stand for the sidecar's HTTP mode (not a test itself): a client sidecar's outbound HTTP listeners, each
 * to an inbound HTTP listener of a server sidecar in front of one backend: `app` (a node:http app), `scripted`
 * (exact response bytes, see scriptedServer), `idle` (a node:http app that closes idle connections after 200 ms)
 * and `down` (a port nothing listens on). Clients talk to `stand.port(backend)`, the client sidecar's listener.
 */
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { IncomingHttpHeaders, Server } from 'node:http'
import { createServer as createTcpServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { TD, startMesh } from './mesh'
import type { Mesh, RunningSidecar } from './mesh'
import { RawConnection, chunked, scriptedServer } from './raw-http'
import type { RawRequest } from './raw-http'

/** Everything but POST to /denied… is allowed. */
export const STAND_POLICY = `version: 1
rules:
  - name: no-denied-posts
    from: [${TD}/client]
    to: [${TD}/server]
    http: { methods: [POST], paths: [/denied*] }
    action: deny
  - name: client-to-server
    from: [${TD}/client]
    to: [${TD}/server]
    action: allow
`

/** 1 MiB of random bytes; `/bytes/N` of the app answers with the first N. */
export const BLOB = randomBytes(1 << 20)

export const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex')

/** What the app received: the request as its node:http server parsed it (trailers too), the body's length and hash, and the port it came from. */
export interface AppRequest { method: string, url: string, headers: IncomingHttpHeaders, rawHeaders: string[], rawTrailers: string[], length: number, sha256: string, remotePort: number }

/**
 * The node:http app. `/echo…` answers with the AppRequest as JSON; `/mirror` with the request's body; `/bytes/N`
 * with the first N bytes of BLOB; anything else with its URL as the body, after `?delay=MS` when given.
 */
export async function recordingApp (keepAliveTimeout = 5000): Promise<{ server: Server, port: number, seen: AppRequest[] }> {
  const seen: AppRequest[] = []
  const server = createServer((req, res) => {
    const parts: Buffer[] = []
    req.on('data', (chunk: Buffer) => parts.push(chunk)).on('end', () => {
      const body = Buffer.concat(parts)
      const url = req.url ?? ''
      const request = { method: req.method ?? '', url, headers: req.headers, rawHeaders: req.rawHeaders, rawTrailers: req.rawTrailers, length: body.length, sha256: sha256(body), remotePort: req.socket.remotePort ?? 0 }
      seen.push(request)
      if (url.startsWith('/echo')) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(request))
      } else if (url === '/mirror') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length }).end(body)
      } else if (url.startsWith('/bytes/')) {
        const size = Number(url.slice('/bytes/'.length))
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size }).end(BLOB.subarray(0, size))
      } else {
        const delay = Number(new URL(url, 'http://app').searchParams.get('delay') ?? 0)
        setTimeout(() => { res.writeHead(200, { 'content-type': 'text/plain' }).end(url) }, delay)
      }
    })
  })
  server.keepAliveTimeout = keepAliveTimeout
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { server, port: (server.address() as AddressInfo).port, seen }
}

/** The chunks of the scripted server's `/chunked` response: sizes from 1 byte to 64 KiB. */
export const CHUNKS = [1, 15, 16, 1000, 4096, 65536, 7].map((size, n) => BLOB.subarray(n * 70000, n * 70000 + size))

/** The body of the scripted server's close-delimited responses. */
export const CLOSE_DELIMITED = BLOB.subarray(0, 100 * 1024)

/**
 * The scripted server's replies: `/chunked`; `/head` (HEAD: Content-Length 1000, no body); `/204`; `/304` (with a
 * Content-Length, as a 304 may carry); `/close-delimited` (neither Content-Length nor chunked, then the end;
 * `?close` adds Connection: close); anything else: its target as a Content-Length body.
 */
function script (request: RawRequest): { write: string | Buffer | Array<string | Buffer>, close?: boolean } {
  const path = request.target.split('?')[0]
  if (path === '/chunked') return { write: ['HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n', chunked(CHUNKS)] }
  if (path === '/head') return { write: 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n' }
  if (path === '/204') return { write: 'HTTP/1.1 204 No Content\r\nX-Reply: 204\r\n\r\n' }
  if (path === '/304') return { write: 'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\nContent-Length: 500\r\n\r\n' }
  if (path === '/close-delimited') {
    const head = `HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n${request.target.endsWith('?close') ? 'Connection: close\r\n' : ''}\r\n`
    return { write: [head, CLOSE_DELIMITED.subarray(0, 1000), CLOSE_DELIMITED.subarray(1000)], close: true }
  }
  return { write: `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(request.target)}\r\n\r\n${request.target}` }
}

export type Backend = 'app' | 'scripted' | 'idle' | 'down'

export interface HttpStand {
  mesh: Mesh
  client: RunningSidecar
  server: RunningSidecar
  app: Awaited<ReturnType<typeof recordingApp>>
  scripted: Awaited<ReturnType<typeof scriptedServer>>
  idle: Awaited<ReturnType<typeof recordingApp>>
  /** The client sidecar's outbound listener to a backend. */
  port: (backend: Backend) => number
  /** A raw connection to the client sidecar's listener to `backend`, closed when `test` ends. */
  open: (test: { teardown: (fn: () => void) => void }, backend: Backend) => Promise<RawConnection>
  close: () => Promise<void>
}

export async function startHttpStand (): Promise<HttpStand> {
  const backends = { app: await recordingApp(), scripted: await scriptedServer(script), idle: await recordingApp(200) }
  const free = createTcpServer().listen(0, '127.0.0.1')
  await once(free, 'listening')
  const downPort = (free.address() as AddressInfo).port
  await new Promise(resolve => free.close(resolve))

  const mesh = await startMesh(STAND_POLICY)
  for (const name of ['client', 'server']) await mesh.register(`${TD}/${name}`)
  const targets: Record<Backend, number> = { app: backends.app.port, scripted: backends.scripted.port, idle: backends.idle.port, down: downPort }
  const names = Object.keys(targets) as Backend[]
  const server = await mesh.startSidecar(`${TD}/server`, {}, {
    inbound: names.map(name => ({ name, listen: '127.0.0.1:0', target: `127.0.0.1:${targets[name]}`, protocol: 'http' }))
  })
  const client = await mesh.startSidecar(`${TD}/client`, {}, {
    outbound: names.map(name => ({ name, listen: '127.0.0.1:0', target: server.address(name), expect: `${TD}/server`, protocol: 'http' }))
  })
  return {
    mesh,
    client,
    server,
    ...backends,
    port: backend => client.port(backend),
    open: async (test, backend) => {
      const connection = await RawConnection.open(client.port(backend))
      test.teardown(() => { connection.close() })
      return connection
    },
    close: async () => {
      await mesh.close()
      for (const socket of backends.scripted.sockets) socket.destroy()
      backends.scripted.server.close()
      for (const backend of [backends.app, backends.idle]) {
        backend.server.close()
        backend.server.closeAllConnections()
      }
    }
  }
}
