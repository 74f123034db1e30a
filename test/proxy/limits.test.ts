import t from 'tap'
import { once } from 'node:events'
import { connect } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { CLIENT_TO_SERVER, TD, echoServer, startMesh } from '../helpers/mesh'
import type { Mesh, RunningSidecar } from '../helpers/mesh'

// Robustness limits with the real agent: a handshake that never comes, a connection left idle, and more
// connections than the listener allows. Each is cut, logged where a peer misbehaved, and the sidecar keeps serving.

let mesh: Mesh
let server: RunningSidecar
let app: Awaited<ReturnType<typeof echoServer>>
t.before(async () => {
  mesh = await startMesh(CLIENT_TO_SERVER)
  for (const name of ['client', 'server']) await mesh.register(`${TD}/${name}`)
  app = await echoServer()
  server = await mesh.startSidecar(`${TD}/server`, { inbound: [`127.0.0.1:0=127.0.0.1:${app.port}`] }, { timeouts: { handshake: 1, idle: 2 }, maxConnections: 1 })
})
t.teardown(async () => {
  app.server.close()
  await mesh.close()
})

async function allowedConnection (): Promise<ReturnType<typeof tlsConnect>> {
  const svid = await mesh.svid(`${TD}/client`)
  const socket = tlsConnect({ port: server.port('inbound-1'), host: '127.0.0.1', cert: svid.certPem, key: svid.keyPem, rejectUnauthorized: false })
  socket.on('error', () => { socket.destroy() })
  await once(socket, 'secureConnect')
  return socket
}

async function closedWithin (socket: { once: (e: 'close', f: () => void) => unknown, destroyed: boolean }, ms: number): Promise<number> {
  const started = Date.now()
  if (!socket.destroyed) {
    await Promise.race([once(socket as never, 'close'), new Promise(resolve => setTimeout(resolve, ms))])
  }
  return socket.destroyed ? Date.now() - started : Infinity
}

void t.test('limits – a client that never completes the handshake is cut after the handshake timeout', async t => {
  const silent = connect(server.port('inbound-1'), '127.0.0.1')
  silent.on('error', () => { silent.destroy() })
  await once(silent, 'connect')
  t.ok(await closedWithin(silent, 5000) < 5000, 'closed by the sidecar')
  t.match(server.logs.find(line => line.event === 'handshake_failed'), { reason: 'ERR_TLS_HANDSHAKE_TIMEOUT' })
})

void t.test('limits – an idle connection is closed after the idle timeout; one at a time beyond the limit is refused', async t => {
  const first = await allowedConnection()
  first.write('hi')
  await once(first, 'data')
  // maxConnections is 1: a second connection is dropped at once, before any handshake.
  const second = connect(server.port('inbound-1'), '127.0.0.1')
  second.on('error', () => { second.destroy() })
  t.ok(await closedWithin(second, 1000) < 1000, 'over the limit: closed')
  const idleFor = await closedWithin(first, 6000)
  t.ok(idleFor >= 1000 && idleFor < 6000, `the idle connection is closed after about 2 s (${idleFor} ms)`)
  const again = await allowedConnection()
  again.write('still serving')
  t.equal(String((await once(again, 'data'))[0]), 'still serving')
  again.destroy()
})
