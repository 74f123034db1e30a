/**
 * The fleet's TCP port against hostile connections, before and at TLS: connections that never finish their handshake
 * (silent, half a ClientHello, one byte at a time, garbage) are closed at the handshake deadline; the caps on
 * connections per address and in all refuse the one too many while others still get in; a client certificate that
 * does not verify to the fleet's bundle ends the connection, as SPIRE's VerifyClientCertIfGiven ends the handshake.
 * Each with the port's limits made small, and real TCP, TLS and gRPC on loopback (127.0.0.2 and 127.0.0.3 are other
 * addresses: loopback is all of 127/8 on Linux).
 */
import t from 'tap'
import { status } from '@grpc/grpc-js'
import { createTestCa } from '../../../certs-test'
import type { ClientSvid } from '../../../agent/upstream'
import { FLEET_METHODS } from '../../../agent/fleet/fleet-authorization'
import { parseSpiffeId } from '../../../spiffe/id'
import { attestOnce, getBundle, PORT_TD, startFleetPort } from './fixtures/fleet-port'
import type { FleetPort } from './fixtures/fleet-port'
import { openRawGrpc } from './fixtures/raw-grpc'
import { clientHello, closedWithin, dripFeed, openTcp } from './fixtures/raw-tcp'

const connectionRefusals = (port: FleetPort, reason: string): Array<Record<string, unknown>> =>
  port.logs().filter(line => line.msg === 'fleet: connection refused' && line.reason === reason)

/** GetBundle over a raw gRPC session from `localAddress`: the status it ended with. */
async function getBundleFrom (port: FleetPort, localAddress: string): Promise<number | undefined> {
  const session = await openRawGrpc(port.port, { localAddress })
  try {
    const call = session.call(FLEET_METHODS.getBundle)
    call.send(Buffer.alloc(0))
    call.stream.end()
    return (await call.ended).status
  } finally {
    session.close()
  }
}

void t.test('fleet port – connections that do not finish their TLS handshake are closed at its deadline', async t => {
  const port = await startFleetPort(t, { limits: { handshakeTimeoutMs: 500 } })
  const hello = await clientHello()
  const silent = await openTcp(port.port)
  const half = await openTcp(port.port)
  half.write(hello.subarray(0, Math.floor(hello.length / 2)))
  const drip = await openTcp(port.port)
  const dripping = dripFeed(drip, hello, 100)
  const garbage = await openTcp(port.port)
  garbage.write('GET / HTTP/1.1\r\nHost: fleet\r\n\r\n')

  t.match(await getBundle(port), { trust_domain: PORT_TD.name }, 'meanwhile, a device gets its answer')
  const [silentMs, halfMs, dripMs, garbageMs] = await Promise.all([silent, half, drip, garbage].map(async socket => await closedWithin(socket, 5_000)))
  t.ok(silentMs !== undefined && silentMs < 3_000, `a connection that never speaks: closed (after ${silentMs} ms)`)
  t.ok(halfMs !== undefined && halfMs < 3_000, `half a ClientHello: closed (after ${halfMs} ms)`)
  t.ok(dripMs !== undefined && dripMs < 3_000, `a ClientHello a byte every 100 ms: closed (after ${dripMs} ms)`)
  t.ok((await dripping) < hello.length, 'before it was whole')
  t.ok(garbageMs !== undefined && garbageMs < 3_000, `bytes that are no TLS: closed (after ${garbageMs} ms)`)
  t.match(connectionRefusals(port, 'handshake_timeout'), [{ address: '127.0.0.1' }], 'the late ones logged with the reason (once per address and reason)')
  t.match(connectionRefusals(port, 'handshake_failed'), [{ address: '127.0.0.1', err: { message: /./ } }], 'the garbage with OpenSSL\'s')
  t.equal((await attestOnce(port, port.maker.issueBirthCert('SN-C-0001'))).status.code, status.OK, 'and a device attests afterwards')
})

void t.test('fleet port – the 65th connection from one address is refused; another address still gets in', async t => {
  const port = await startFleetPort(t, { limits: { handshakeTimeoutMs: 20_000 } })
  const held = await Promise.all(Array.from({ length: 64 }, async () => await openTcp(port.port)))
  t.teardown(() => { for (const socket of held) socket.destroy() })
  const extra = await openTcp(port.port)
  t.ok((await closedWithin(extra, 2_000)) !== undefined, 'the 65th from 127.0.0.1 is closed at once')
  t.equal((await Promise.all(held.map(async socket => await closedWithin(socket, 10)))).filter(ms => ms !== undefined).length, 0, 'the 64 stay open')
  t.equal(await getBundleFrom(port, '127.0.0.2'), status.OK, 'a device from 127.0.0.2 gets in and is answered')
  t.match(connectionRefusals(port, 'max_connections_per_address'), [{ address: '127.0.0.1' }], 'logged with the reason and address')
  held.pop()?.destroy()
  await new Promise(resolve => setTimeout(resolve, 100))
  const again = await openTcp(port.port)
  t.equal(await closedWithin(again, 300), undefined, 'once one of them closes, 127.0.0.1 gets in again')
  again.destroy()
})

void t.test('fleet port – the connection one too many in all is refused, and logged', async t => {
  const port = await startFleetPort(t, { limits: { handshakeTimeoutMs: 20_000, maxConnections: 6, maxConnectionsPerAddress: 4 } })
  const held = [
    ...await Promise.all(Array.from({ length: 4 }, async () => await openTcp(port.port, '127.0.0.1'))),
    ...await Promise.all(Array.from({ length: 2 }, async () => await openTcp(port.port, '127.0.0.2')))
  ]
  t.teardown(() => { for (const socket of held) socket.destroy() })
  await new Promise(resolve => setTimeout(resolve, 100))
  const extra = await openTcp(port.port, '127.0.0.3')
  t.ok((await closedWithin(extra, 2_000)) !== undefined, 'the 7th, from a third address, is closed at once')
  t.match(connectionRefusals(port, 'max_connections'), [{ address: '127.0.0.3' }], 'logged with the reason and address')
  held.pop()?.destroy()
  await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(await getBundleFrom(port, '127.0.0.3'), status.OK, 'once one closes, 127.0.0.3 gets in and is answered')
})

void t.test('fleet port – a client certificate that does not verify to the fleet\'s bundle ends the connection; none is fine', async t => {
  const port = await startFleetPort(t)
  const agentId = parseSpiffeId(`spiffe://${PORT_TD.name}/spire/agent/x509pop/0000`)
  const otherCa = createTestCa(PORT_TD.name)
  const fromOtherCa = otherCa.issueSvid(agentId.toString())
  const valid = await port.ca.mintX509Svid({ spiffeId: agentId })
  const cases: Array<[string, ClientSvid]> = [
    ['an SVID for the fleet\'s trust domain from another CA', { chain: fromOtherCa.chain, key: fromOtherCa.key }],
    ['a self-signed certificate', { chain: [otherCa.certDer], key: otherCa.key }]
  ]
  for (const [what, svid] of cases) {
    t.match(await getBundle(port, svid), { code: status.UNAVAILABLE }, `${what}: GetBundle is refused with the connection`)
    await t.rejects(openRawGrpc(port.port, { client: svid }), /closed the session before its settings/, `${what}: the connection ends before any call (AttestAgent included)`)
  }
  t.match(connectionRefusals(port, 'client_svid_invalid'), [{ address: '127.0.0.1', err: { message: /./ } }], 'logged with the reason (once per address and reason)')
  t.match(await getBundle(port, { chain: valid.chain, key: valid.privateKey as ClientSvid['key'] }), { trust_domain: PORT_TD.name },
    'with an X509-SVID of the fleet\'s own CA, GetBundle is answered')
  t.match(await getBundle(port), { trust_domain: PORT_TD.name }, 'and without a certificate, as SPIRE answers anyone')
})
