import t from 'tap'
import { createHash, X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import { connect as tlsConnect } from 'node:tls'
import type { TLSSocket } from 'node:tls'
import { parseXfcc } from '../../spiffe/peer-header'
import { TD, echoServer, startMesh } from '../helpers/mesh'
import type { Mesh, RunningSidecar } from '../helpers/mesh'
import { OPCODE_CLOSE, OPCODE_TEXT, SocketReader, acceptKey, decodeFrame, decodeResponseHead, encodeFrame, upgradeRequest, websocketEchoApp } from '../helpers/websocket'
import type { ResponseHead } from '../helpers/websocket'

// WebSocket upgrades through an inbound HTTP listener, with the real agent: the upgrade request is authorized like
// any request (method and path), the app sees the caller in X-Forwarded-Client-Cert, frames flow both ways, and a
// policy reload that no longer allows the pair closes the open WebSocket while other allowed connections stay.

// The peer's rule has no HTTP conditions, so it would allow any request too: its port keeps it to the TCP app.
const peerRule = (port: number): string => `
  - name: peer-tcp
    from: [${TD}/peer]
    to: [${TD}/server]
    ports: [${port}]
    action: allow
`
const policy = (port: number): string => `version: 1
rules:
  - name: client-streams
    from: [${TD}/client]
    to: [${TD}/server]
    http: { methods: [GET], paths: [/ws/*] }
    action: allow
  - name: no-ws-admin
    from: ['*']
    to: [${TD}/server]
    http: { paths: [/ws/admin*] }
    action: deny${peerRule(port)}`

let mesh: Mesh
let server: RunningSidecar
let app: Awaited<ReturnType<typeof websocketEchoApp>>
let echo: Awaited<ReturnType<typeof echoServer>>
t.before(async () => {
  app = await websocketEchoApp()
  echo = await echoServer()
  mesh = await startMesh(policy(echo.port))
  for (const name of ['client', 'server', 'peer']) await mesh.register(`${TD}/${name}`)
  server = await mesh.startSidecar(`${TD}/server`, {}, {
    inbound: [
      { name: 'ws', listen: '127.0.0.1:0', target: `127.0.0.1:${app.port}`, protocol: 'http' },
      { name: 'tcp', listen: '127.0.0.1:0', target: `127.0.0.1:${echo.port}` }
    ]
  })
})
t.teardown(async () => {
  for (const socket of app.sockets) socket.destroy()
  await mesh.close()
  app.server.close()
  echo.server.close()
})

/** A TLS client that is no sidecar, holding `name`'s SVID (-k style: SVIDs name no host). */
async function dial (listener: string, name: string): Promise<{ socket: TLSSocket, reader: SocketReader }> {
  const svid = await mesh.svid(`${TD}/${name}`)
  const socket = tlsConnect({ host: '127.0.0.1', port: server.port(listener), cert: svid.certPem, key: svid.keyPem, rejectUnauthorized: false })
  socket.on('error', () => { socket.destroy() })
  const reader = new SocketReader(socket)
  await once(socket, 'secureConnect')
  return { socket, reader }
}

/** Opens a WebSocket as `name` on `path`: returns the response head and, on 101, the open connection. */
async function openWebSocket (name: string, path: string): Promise<{ socket: TLSSocket, reader: SocketReader, key: string } & ResponseHead> {
  const { socket, reader } = await dial('ws', name)
  const request = upgradeRequest(server.address('ws'), path)
  socket.write(request.text)
  const head = await reader.take(decodeResponseHead)
  return { socket, reader, ...head, key: request.key }
}

async function roundTrip (socket: TLSSocket, reader: SocketReader, text: string): Promise<string> {
  socket.write(encodeFrame(OPCODE_TEXT, text, true))
  const frame = await reader.take(decodeFrame)
  if (frame.opcode !== OPCODE_TEXT || frame.masked) throw new Error(`unexpected frame: opcode ${frame.opcode}, masked ${String(frame.masked)}`)
  return frame.payload.toString('utf8')
}

/** Resolves true when the socket closes within `ms`, false otherwise. */
async function closesWithin (socket: { destroyed: boolean, once: (event: 'close', f: () => void) => unknown }, ms: number): Promise<boolean> {
  if (socket.destroyed) return true
  return await new Promise(resolve => {
    const timer = setTimeout(() => { resolve(false) }, ms)
    socket.once('close', () => {
      clearTimeout(timer)
      resolve(true)
    })
  })
}

void t.test('websocket helpers – the accept value of RFC 6455 §1.3, and frames that decode to what was encoded', async t => {
  t.equal(acceptKey('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=')
  const long = 'x'.repeat(300)
  for (const [text, mask] of [['hi', true], ['hi', false], [long, true]] as const) {
    const encoded = encodeFrame(OPCODE_TEXT, text, mask)
    t.ok(encoded.every((_byte, n) => decodeFrame(encoded.subarray(0, n)) === undefined), 'every incomplete prefix waits for more')
    const decoded = decodeFrame(encoded)
    t.same({ ...decoded?.value, payload: decoded?.value.payload.toString() }, { fin: true, opcode: OPCODE_TEXT, masked: mask, payload: text })
    t.equal(decoded?.used, encoded.length)
  }
})

void t.test('sidecar websocket – an allowed upgrade reaches the app with the caller in X-Forwarded-Client-Cert, and frames round-trip', async t => {
  const ws = await openWebSocket('client', '/ws/chat?room=1')
  t.teardown(() => { ws.socket.destroy() })
  t.equal(ws.status, 101)
  t.equal(ws.headers['sec-websocket-accept'], acceptKey(ws.key), 'the app\'s accept value comes back unchanged')
  t.match(ws.headers, { upgrade: /^websocket$/i, connection: /upgrade/i })
  const seen = app.seen.at(-1)
  t.equal(seen?.url, '/ws/chat?room=1', 'the app gets the request target as sent')
  t.equal(seen?.headers['sec-websocket-key'], ws.key)
  const leaf = new X509Certificate((await mesh.svid(`${TD}/client`)).certPem)
  t.same(parseXfcc(seen?.headers['x-forwarded-client-cert'] as string), [{ by: `${TD}/server`, hash: createHash('sha256').update(leaf.raw).digest('hex'), uri: `${TD}/client` }])
  t.equal(await roundTrip(ws.socket, ws.reader, 'hello over the mesh'), 'hello over the mesh')
  t.equal(await roundTrip(ws.socket, ws.reader, 'ü'.repeat(200)), 'ü'.repeat(200), 'a frame with a 16-bit length, in UTF-8')
  ws.socket.write(encodeFrame(OPCODE_CLOSE, Buffer.from([0x03, 0xe8]), true))
  t.match(await ws.reader.take(decodeFrame), { opcode: OPCODE_CLOSE, payload: Buffer.from([0x03, 0xe8]) }, 'the close handshake passes too')
  t.ok(await closesWithin(ws.socket, 3000), 'and the connection ends')
})

void t.test('sidecar websocket – an upgrade the policy denies gets 403 naming the rule, and never reaches the app', async t => {
  const before = app.seen.length
  for (const [name, path, rule] of [['client', '/ws/admin/feed', 'no-ws-admin'], ['client', '/other', 'default']] as const) {
    const ws = await openWebSocket(name, path)
    t.equal(ws.line, 'HTTP/1.1 403 Forbidden', `${name} ${path}`)
    t.notOk('sec-websocket-accept' in ws.headers, 'no upgrade')
    const body = ws.reader.buffer.subarray(0, Number(ws.headers['content-length'])).toString()
    t.match(JSON.parse(body), { error: 'denied by policy', rule })
    t.ok(await closesWithin(ws.socket, 3000), 'the sidecar closes the connection')
  }
  // A peer the policy allows nothing on this listener is refused right after the handshake, before any request.
  const { socket } = await dial('ws', 'peer')
  t.ok(await closesWithin(socket, 3000), 'a peer allowed nothing here: closed at once')
  t.match(server.logs.find(line => line.event === 'connection_refused'), { listener: 'ws', reason: 'no_allow_rule', peer: `${TD}/peer` })
  t.equal(app.seen.length, before, 'the app saw none of them')
  t.match(server.logs.find(line => line.event === 'denied' && line.path === '/ws/admin/feed'), { listener: 'ws', direction: 'inbound', peer: `${TD}/client`, method: 'GET', rule: 'no-ws-admin' })
})

void t.test('sidecar websocket – a policy reload that denies the pair closes the open WebSocket; an allowed TCP connection stays', async t => {
  const ws = await openWebSocket('client', '/ws/live')
  t.equal(ws.status, 101)
  t.equal(await roundTrip(ws.socket, ws.reader, 'before'), 'before')
  const appSide = app.sockets.at(-1)
  const tcp = await dial('tcp', 'peer')
  t.teardown(() => {
    ws.socket.destroy()
    tcp.socket.destroy()
  })
  tcp.socket.write('ping')
  t.equal((await tcp.reader.take(buffer => buffer.length >= 4 ? { value: buffer.toString(), used: buffer.length } : undefined)), 'ping')

  mesh.writePolicy(`version: 1\nrules:${peerRule(echo.port)}`)
  t.ok(await closesWithin(ws.socket, 5000), 'the client\'s WebSocket connection is closed')
  t.match(server.logs.find(line => line.event === 'closed_by_policy'), {
    level: 40, listener: 'ws', direction: 'inbound', from: `${TD}/client`, to: `${TD}/server`, rule: 'default', reason: 'no rule matched; the default action is deny'
  })
  t.equal(server.logs.filter(line => line.event === 'closed_by_policy').length, 1, 'only that connection')
  t.ok(appSide !== undefined && await closesWithin(appSide, 3000), 'the app\'s side of the WebSocket is closed too')

  tcp.socket.write('still here')
  t.equal((await tcp.reader.take(buffer => buffer.length >= 10 ? { value: buffer.toString(), used: buffer.length } : undefined)), 'still here', 'the peer still allowed keeps its connection')
  const again = await dial('ws', 'client')
  t.ok(await closesWithin(again.socket, 3000), 'and a new connection of the client is refused at once: no rule allows it there any more')
})
