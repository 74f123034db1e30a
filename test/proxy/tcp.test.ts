import t from 'tap'
import { once } from 'node:events'
import { connect } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { CLIENT_TO_SERVER, TD, echoServer, startMesh } from '../helpers/mesh'
import type { Mesh } from '../helpers/mesh'

// TCP mode end to end with the real agent: an app's plain TCP goes out through its sidecar's outbound listener,
// over mutual TLS to the server's sidecar, which verifies, authorizes and forwards to the app.

let mesh: Mesh
t.before(async () => {
  mesh = await startMesh(CLIENT_TO_SERVER)
  for (const name of ['client', 'server', 'intruder']) await mesh.register(`${TD}/${name}`)
})
t.teardown(async () => { await mesh.close() })

/** Sends `text` through a TCP connection and resolves with what comes back before the connection closes or 2 s pass. */
async function exchange (port: number, text: string): Promise<string> {
  const socket = connect(port, '127.0.0.1')
  let received = ''
  socket.setEncoding('utf8').on('data', (chunk: string) => {
    received += chunk
    if (received.length >= text.length) socket.end()
  })
  socket.on('error', () => { socket.destroy() })
  socket.write(text)
  const timer = setTimeout(() => { socket.destroy() }, 2000)
  await once(socket, 'close')
  clearTimeout(timer)
  return received
}

void t.test('sidecar tcp – an allowed peer gets through; a peer the policy denies is refused and the log names the rule', async t => {
  const app = await echoServer()
  t.teardown(() => { app.server.close() })
  const server = await mesh.startSidecar(`${TD}/server`, { inbound: [`127.0.0.1:0=127.0.0.1:${app.port}`] })
  const client = await mesh.startSidecar(`${TD}/client`, { outbound: [`127.0.0.1:0=127.0.0.1:${server.port('inbound-1')}@${TD}/server`] })
  t.equal(await exchange(client.port('outbound-1'), 'hello through the mesh'), 'hello through the mesh')
  t.equal(await exchange(client.port('outbound-1'), 'and again'), 'and again')
  t.match(client.logs.filter(line => line.event === 'tls_connected').map(line => line.resumed), [false, true], 'the second connection resumed the TLS session, and both ends verified it again')
  t.match(server.logs.filter(line => line.event === 'denied'), [], 'nothing denied')
  // The intruder's own sidecar already refuses: the same policy binds both ends.
  const intruder = await mesh.startSidecar(`${TD}/intruder`, { outbound: [`127.0.0.1:0=127.0.0.1:${server.port('inbound-1')}`] })
  t.equal(await exchange(intruder.port('outbound-1'), 'let me out'), '', 'the intruder\'s app gets nothing back')
  t.match(intruder.logs.find(line => line.event === 'denied'), { listener: 'outbound-1', direction: 'outbound', peer: `${TD}/server`, self: `${TD}/intruder`, rule: 'default' })
  // A client that is no sidecar, with the intruder's valid SVID: the server's sidecar refuses it.
  const svid = await mesh.svid(`${TD}/intruder`)
  const socket = tlsConnect({ port: server.port('inbound-1'), host: '127.0.0.1', cert: svid.certPem, key: svid.keyPem, rejectUnauthorized: false })
  let received = ''
  socket.on('data', (chunk: Buffer) => { received += chunk.toString() }).on('error', () => { socket.destroy() })
  await once(socket, 'secureConnect')
  socket.write('let me in')
  await once(socket, 'close')
  t.equal(received, '', 'nothing reaches the app or comes back')
  t.match(server.logs.find(line => line.event === 'denied'), {
    level: 40, listener: 'inbound-1', direction: 'inbound', peer: `${TD}/intruder`, self: `${TD}/server`, rule: 'default', reason: 'no rule matched; the default action is deny'
  })
})

void t.test('sidecar tcp – a dry-run rule is logged with what it would do, and the connection is decided by the enforced rules', async t => {
  const app = await echoServer()
  t.teardown(() => { app.server.close() })
  const server = await mesh.startSidecar(`${TD}/server`, { inbound: [`127.0.0.1:0=127.0.0.1:${app.port}`] })
  const client = await mesh.startSidecar(`${TD}/client`, { outbound: [`127.0.0.1:0=127.0.0.1:${server.port('inbound-1')}@${TD}/server`] })
  mesh.writePolicy(`${CLIENT_TO_SERVER}  - { name: try-deny-client, from: ["${TD}/client"], to: ["*"], action: deny, mode: dry-run }\n`)
  const deadline = Date.now() + 5000
  while (![server, client].every(s => s.logs.some(line => line.event === 'policy_reloaded')) && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 50))
  t.equal(await exchange(client.port('outbound-1'), 'still allowed'), 'still allowed')
  t.match(server.logs.find(line => line.event === 'dry_run'), {
    listener: 'inbound-1', peer: `${TD}/client`, rule: 'client-to-server', wouldBe: { allow: false, rule: 'try-deny-client' }
  })
  t.same(server.logs.filter(line => line.event === 'denied'), [], 'nothing denied')
  mesh.writePolicy(CLIENT_TO_SERVER)
})
