import t from 'tap'
import { refusedTotal, startAttackStand } from '../helpers/attack-stand'
import type { AttackStand } from '../helpers/attack-stand'
import { TD } from '../helpers/mesh'
import { sameDeviceDirection } from '../helpers/same-device-direction'

// Node mode's same-device handoff under a local app that holds connections and sends nothing (the attack stand's
// same-device direction, with limits of its own): the callee's side still applies maxConnectionsPerPeer to the
// caller, counted, and closes a connection whose head does not come within timeouts.head.

let stand: AttackStand
t.before(async () => { stand = await startAttackStand() })
t.teardown(async () => { await stand.close() })

void t.test('same-device limits – maxConnectionsPerPeer and timeouts.head hold for a handed-over caller', async t => {
  const server = await stand.startServer({ maxConnectionsPerPeer: 2, timeouts: { head: 1 }, transparent: { httpPorts: [stand.app.port, stand.scripted.port] } })
  const direction = await sameDeviceDirection(stand.client, server, stand.scripted, { app: stand.app.port, raw: stand.scripted.port }, `${TD}/server`)
  t.teardown(() => { direction.close() })
  const held = [await direction.open(t, 'raw'), await direction.open(t, 'raw')]
  const third = await direction.open(t, 'raw')
  t.ok(await third.endsWithin(1000), 'a third connection of the same caller is closed at once')
  t.ok(await refusedTotal(server, 'raw', 'max_connections_per_peer') > 0, 'and counted as max_connections_per_peer')
  const started = Date.now()
  const closed = await Promise.all(held.map(async connection => await connection.endsWithin(4000)))
  t.same(closed, [true, true], `the two held connections, silent, are closed at timeouts.head (${Date.now() - started} ms)`)
  t.ok(await refusedTotal(server, 'raw', 'head_timeout') > 0, 'counted as head_timeout')
})
