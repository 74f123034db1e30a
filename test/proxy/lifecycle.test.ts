import t from 'tap'
import { once } from 'node:events'
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import { TD, echoServer, startMesh } from '../helpers/mesh'
import type { Mesh } from '../helpers/mesh'
import { adminGet, until } from '../helpers/admin-http'

// What happens to a running sidecar over time, with the real agent: SVID rotations (short-lived SVIDs), policy
// reloads, and what the admin endpoints report meanwhile.

const policy = (withSecond: boolean): string => `version: 1
rules:
  - name: first-to-server
    from: [${TD}/first]
    to: [${TD}/server]
    action: allow
${withSecond ? `  - name: second-to-server
    from: [${TD}/second]
    to: [${TD}/server]
    action: allow
` : ''}`

let mesh: Mesh
let app: Awaited<ReturnType<typeof echoServer>>
t.before(async () => {
  mesh = await startMesh(policy(true))
  // 4 s SVIDs: renewed every ~2 s (half-life ±10 %), so two rotations take a few seconds.
  for (const name of ['first', 'second', 'server']) await mesh.register(`${TD}/${name}`, 4)
  app = await echoServer()
})
t.teardown(async () => {
  app.server.close()
  await mesh.close()
})

/** An open connection through a sidecar: `say` writes a line and resolves with its echo. */
async function openConnection (port: number): Promise<{ socket: Socket, say: (text: string) => Promise<string> }> {
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  socket.setEncoding('utf8')
  const say = async (text: string): Promise<string> => {
    socket.write(text)
    let received = ''
    while (received.length < text.length) {
      const [chunk] = await Promise.race([once(socket, 'data') as Promise<[string]>, once(socket, 'close').then(() => [''])])
      if (chunk === '') break
      received += chunk
    }
    return received
  }
  return { socket, say }
}

void t.test('sidecar lifecycle – a connection opened before two SVID rotations still carries data after them', async t => {
  const server = await mesh.startSidecar(`${TD}/server`, { inbound: [`127.0.0.1:0=127.0.0.1:${app.port}`] })
  const client = await mesh.startSidecar(`${TD}/first`, { outbound: [`127.0.0.1:0=127.0.0.1:${server.port('inbound-1')}@${TD}/server`] })
  const connection = await openConnection(client.port('outbound-1'))
  t.equal(await connection.say('before'), 'before')
  // Each sidecar's own leaf, as it changes: the first plus two rotations.
  const leaves = [server, client].map(({ sidecar }) => {
    const seen = new Set([sidecar.services.identity.current?.context.svid.chain[0].toString('base64')])
    sidecar.services.identity.on('change', state => { seen.add(state.context.svid.chain[0].toString('base64')) })
    return seen
  })
  await until('two rotations on both sidecars', () => leaves.every(seen => seen.size >= 3))
  t.match(server.logs.filter(line => line.event === 'svid_updated').length, Number, 'rotations are logged')
  t.equal(await connection.say('after two rotations'), 'after two rotations', 'the old connection still works')
  const fresh = await openConnection(client.port('outbound-1'))
  t.equal(await fresh.say('new handshake'), 'new handshake', 'new connections use the new SVIDs')
  connection.socket.destroy()
  fresh.socket.destroy()
})

void t.test('sidecar lifecycle – a policy reload closes the open connections it now denies, and only those', async t => {
  mesh.writePolicy(policy(true))
  const server = await mesh.startSidecar(`${TD}/server`, { inbound: [`127.0.0.1:0=127.0.0.1:${app.port}`] })
  // Plain mTLS clients would do; sidecars with an open policy for themselves keep the test about the server's side.
  const first = await mesh.startSidecar(`${TD}/first`, { outbound: [`127.0.0.1:0=127.0.0.1:${server.port('inbound-1')}`] })
  const second = await mesh.startSidecar(`${TD}/second`, { outbound: [`127.0.0.1:0=127.0.0.1:${server.port('inbound-1')}`] })
  const kept = await openConnection(first.port('outbound-1'))
  const dropped = await openConnection(second.port('outbound-1'))
  t.equal(await kept.say('one'), 'one')
  t.equal(await dropped.say('two'), 'two')
  const closed = once(dropped.socket, 'close')
  mesh.writePolicy(policy(false))
  await closed
  t.pass('the connection the new policy denies is closed')
  t.equal(await kept.say('still here'), 'still here', 'the allowed one is untouched')
  await until('the log line', () => server.logs.some(line => line.event === 'closed_by_policy'))
  t.match(server.logs.find(line => line.event === 'closed_by_policy'), { listener: 'inbound-1', from: `${TD}/second`, to: `${TD}/server`, rule: 'default' })
  t.match((await server.sidecar.services.metrics.closed.get()).values, [{ labels: { listener: 'inbound-1', reason: 'policy' }, value: 1 }], 'counted')
  kept.socket.destroy()
})

void t.test('sidecar lifecycle – the admin endpoints answer: live, ready, metrics, status', async t => {
  mesh.writePolicy(policy(true))
  const server = await mesh.startSidecar(`${TD}/server`, { inbound: [`127.0.0.1:0=127.0.0.1:${app.port}`] })
  const client = await mesh.startSidecar(`${TD}/first`, { outbound: [`127.0.0.1:0=127.0.0.1:${server.port('inbound-1')}`] })
  const connection = await openConnection(client.port('outbound-1'))
  t.equal(await connection.say('count me'), 'count me')
  connection.socket.destroy()
  await until('the connection to close', () => server.sidecar.services.tracker.size === 0)
  const admin = server.address('admin')
  t.same(await adminGet(admin, '/live'), { status: 200, body: '{\n  "live": true\n}\n' })
  t.same(JSON.parse((await adminGet(admin, '/ready')).body), { ready: true })
  const status = JSON.parse((await adminGet(admin, '/status')).body) as Record<string, unknown>
  t.match(status, {
    spiffeId: `${TD}/server`,
    svidExpiry: /^\d{4}-/,
    svidExpired: false,
    trustDomains: ['plant.example'],
    policy: { file: mesh.policyFile, hash: /^sha256:/, rules: 2, defaultAction: 'deny' },
    listeners: [{ name: 'inbound-1', direction: 'inbound', protocol: 'tcp', listen: /^127\.0\.0\.1:\d+$/, target: `127.0.0.1:${app.port}` }]
  })
  const metrics = (await adminGet(admin, '/metrics')).body
  t.match(metrics, 'chaperone_connections_total{listener="inbound-1",direction="inbound",decision="allow",rule="first-to-server"} 1')
  t.match(metrics, 'chaperone_active_connections{listener="inbound-1"} 0')
  t.match(metrics, /chaperone_bytes_total\{listener="inbound-1",direction="rx"\} 8\n/)
  t.match(metrics, /chaperone_svid_expiry_timestamp_seconds \d+/)
  t.match(metrics, 'chaperone_policy_reloads_total{result="failed"} 0')
  t.equal((await adminGet(admin, '/nope')).status, 404)

  // A rejected reload: the last good policy stays, and /status says when, why, and each problem.
  const before = JSON.parse((await adminGet(admin, '/status')).body) as { policy: { hash: string } }
  mesh.writePolicy('version: 2\ndefaultAction: deny\nrules: []\n')
  await until('the rejected reload', () => server.logs.some(line => line.event === 'policy_reload_failed'))
  const after = JSON.parse((await adminGet(admin, '/status')).body) as { policy: { hash: string, lastReload: unknown } }
  t.equal(after.policy.hash, before.policy.hash, 'the last good policy is in force')
  t.match(after.policy.lastReload, { at: /^\d{4}-\d\d-\d\dT/, trigger: 'watch', result: 'failed', problems: [`${mesh.policyFile}:1:10: error: version: must be 1`] })
})
