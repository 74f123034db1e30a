import t from 'tap'
import type { Test } from 'tap'
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import { expectRefusal, refusalLogged, refusedTotal, startAttackStand } from '../helpers/attack-stand'
import type { AttackStand, Direction } from '../helpers/attack-stand'
import type { RunningSidecar } from '../helpers/mesh'
import { TD } from '../helpers/mesh'
import type { RawConnection } from '../helpers/raw-http'
import { openMtls } from '../helpers/raw-mtls'
import type { SvidPem } from '../helpers/raw-mtls'

// Slots and deadlines, attacked: a peer the policy allows nothing, a peer that opens more connections than its
// share, connections beyond the listener's limit, heads that never complete, heads with too many lines or bytes.
// Each refusal at a limit is counted in chaperone_connections_refused_total{listener,reason} and logged as
// connection_refused; legitimate peers are served throughout. Sidecars with other settings than the defaults are
// started by the test that needs them.

let stand: AttackStand
t.before(async () => { stand = await startAttackStand() })
t.teardown(async () => { await stand.close() })

const GET_OK = 'GET /public/ok HTTP/1.1\r\nHost: backend.test\r\n\r\n'

/** A new mutual-TLS connection as `svid` to `port`, closed when `test` ends. */
async function peer (test: Test, port: number, svid: SvidPem): Promise<RawConnection> {
  const connection = await openMtls(port, svid)
  test.teardown(() => { connection.close() })
  return connection
}

/** An allowed request on `connection`: its status and body, or why there is none. */
async function served (connection: RawConnection): Promise<string> {
  connection.write(GET_OK)
  const response = await connection.response(false, 3000).catch((err: Error) => err)
  return response instanceof Error ? response.message : `${response.status} ${response.body.toString()}`
}

/** What happens to a connection as `svid` that sends nothing: closed in or right after the handshake (within 2 s), or not. */
async function refusedAtHandshake (port: number, svid: SvidPem): Promise<string> {
  let connection
  try {
    connection = await openMtls(port, svid)
  } catch {
    return 'closed'
  }
  const ended = await connection.endsWithin(2000)
  const received = connection.buffer.toString('latin1')
  connection.close()
  return ended ? (received === '' ? 'closed' : `closed after sending ${JSON.stringify(received.slice(0, 80))}`) : 'still open after 2 s'
}

/** The counter for `reason` on `listener` is above zero and a connection_refused line names it with `fields`. */
async function counted (t: Test, sidecar: RunningSidecar, listener: string, reason: string, fields: Record<string, unknown>): Promise<void> {
  t.ok(await refusedTotal(sidecar, listener, reason) > 0, `chaperone_connections_refused_total{listener="${listener}",reason="${reason}"} counted`)
  t.match(await refusalLogged(sidecar, reason), { event: 'connection_refused', listener, reason, remote: /127\.0\.0\.1/, ...fields }, `${reason}: logged`)
}

void t.test('attack limits – a peer no rule allows is closed right after the TLS handshake, before it sends a request', async t => {
  t.equal(await refusedAtHandshake(stand.server.port('app'), stand.svid('nobody')), 'closed', 'nobody: closed, nothing sent to it')
  await counted(t, stand.server, 'app', 'no_allow_rule', { direction: 'inbound', peer: `${TD}/nobody` })
  t.equal(await served(await peer(t, stand.server.port('app'), stand.svid('client'))), '200 /public/ok', 'the client is served')
})

void t.test('attack limits – legitimate peers are served while a peer no rule allows opens 300 connections', async t => {
  // maxConnections 100: connections nobody kept open would take every slot after the fourth wave.
  const server = await stand.startServer({ maxConnections: 100 })
  const nobodys: RawConnection[] = []
  t.teardown(() => { for (const connection of nobodys) connection.close() })
  const results: string[] = []
  for (let wave = 0; wave < 10; wave++) {
    const opened = await Promise.allSettled(Array.from({ length: 30 }, async () => await openMtls(server.port('app'), stand.svid('nobody'))))
    for (const result of opened) if (result.status === 'fulfilled') nobodys.push(result.value)
    const client = await openMtls(server.port('app'), stand.svid('client')).catch((err: Error) => err)
    results.push(`wave ${wave}: ${client instanceof Error ? client.message : await served(client)}`)
    if (!(client instanceof Error)) client.close() // its own share of connections is not what is tested here
  }
  t.same(results.filter(line => !line.endsWith('200 /public/ok')), [], 'the client is served after each wave of 30')
  await new Promise(resolve => setTimeout(resolve, 200))
  t.equal(nobodys.filter(connection => !connection.ended).length, 0, 'none of nobody\'s connections is left open')
})

void t.test('attack limits – a peer\'s connections beyond maxConnectionsPerPeer are closed after the handshake; other peers are unaffected', async t => {
  const server = await stand.startServer({ maxConnectionsPerPeer: 3 })
  const port = server.port('app')
  const mine = []
  for (let n = 0; n < 3; n++) {
    const connection = await peer(t, port, stand.svid('client'))
    t.equal(await served(connection), '200 /public/ok', `client connection ${n + 1}: served`)
    mine.push(connection)
  }
  t.equal(await refusedAtHandshake(port, stand.svid('client')), 'closed', 'client connection 4: closed after the handshake')
  for (let n = 0; n < 3; n++) t.equal(await served(await peer(t, port, stand.svid('friend'))), '200 /public/ok', `friend connection ${n + 1}: served`)
  t.equal(await served(mine[0]), '200 /public/ok', 'the client\'s open connections still serve')
  mine[0].close()
  let again = ''
  for (let attempt = 0; attempt < 20 && again !== '200 /public/ok'; attempt++) {
    await new Promise(resolve => setTimeout(resolve, 100))
    const connection = await peer(t, port, stand.svid('client')).catch(() => undefined)
    again = connection === undefined ? 'refused' : await served(connection)
  }
  t.equal(again, '200 /public/ok', 'a closed connection frees its slot')
  await counted(t, server, 'app', 'max_connections_per_peer', { direction: 'inbound', peer: `${TD}/client` })
})

void t.test('attack limits – connections beyond maxConnections are refused, counted and logged', async t => {
  const server = await stand.startServer({ maxConnections: 20, maxConnectionsPerPeer: 20 })
  const sockets: Socket[] = []
  t.teardown(() => { for (const socket of sockets) socket.destroy() })
  for (let n = 0; n < 20; n++) { // plain TCP that never starts TLS: each holds a slot until the handshake timeout
    const socket = connect(server.port('app'), '127.0.0.1').on('error', () => { socket.destroy() })
    sockets.push(socket)
  }
  await new Promise(resolve => setTimeout(resolve, 200))
  t.equal(await refusedAtHandshake(server.port('app'), stand.svid('client')), 'closed', 'the 21st: closed')
  await counted(t, server, 'app', 'max_connections', { direction: 'inbound' })
})

void t.test('attack limits – an address with maxConnectionsPerPeer TLS handshakes under way gets no more; a finished handshake frees its slot', async t => {
  const server = await stand.startServer({ maxConnectionsPerPeer: 3 })
  const stalled: Socket[] = []
  const stall = async (): Promise<Socket> => { // plain TCP that never starts TLS: a handshake under way until the timeout
    const socket = connect(server.port('app'), '127.0.0.1').on('error', () => { socket.destroy() })
    stalled.push(socket)
    await new Promise(resolve => socket.once('connect', resolve))
    return socket
  }
  t.teardown(() => { for (const socket of stalled) socket.destroy() })
  for (let n = 0; n < 3; n++) await stall()
  await new Promise(resolve => setTimeout(resolve, 200))
  t.equal(await refusedAtHandshake(server.port('app'), stand.svid('client')), 'closed', 'a 4th connection from the address: closed before its handshake')
  await counted(t, server, 'app', 'max_handshakes_per_address', { direction: 'inbound' })
  stalled[0].destroy()
  await new Promise(resolve => setTimeout(resolve, 200))
  const connection = await peer(t, server.port('app'), stand.svid('client'))
  t.equal(await served(connection), '200 /public/ok', 'a slot freed by a closed connection: the handshake completes, the request is served')
  t.equal(await served(await peer(t, server.port('app'), stand.svid('friend'))), '200 /public/ok', 'finished handshakes hold no handshake slot: the next one is served too')
})

/** Sends nothing on `connection`: how long until it is closed, and what came first (nothing, or a 408). */
async function silent (connection: RawConnection, started: number): Promise<string> {
  const ended = await connection.endsWithin(4000)
  const received = connection.buffer.toString('latin1')
  const elapsed = Date.now() - started
  if (!ended) return 'still open after 4 s'
  if (received !== '' && !received.startsWith('HTTP/1.1 408 ')) return `closed after sending ${JSON.stringify(received.slice(0, 80))}`
  return elapsed >= 800 && elapsed <= 2500 ? 'closed at the deadline' : `closed after ${elapsed} ms`
}

/** Sends a head a line at a time, one every 300 ms: the 408 comes about a second after the first byte. */
async function slowHead (connection: RawConnection): Promise<string> {
  const started = Date.now()
  connection.write('GET /public/slow HTTP/1.1\r\nHost: backend.test\r\n')
  const trickle = setInterval(() => { if (!connection.ended) connection.write('X-Slow: 1\r\n') }, 300)
  const response = await connection.response(false, 4000).catch((err: Error) => err).finally(() => { clearInterval(trickle) })
  if (response instanceof Error) return response.message
  const elapsed = Date.now() - started
  const closed = await connection.endsWithin(1000)
  return `${response.status}${closed ? ', closed' : ', left open'}${elapsed <= 2500 ? '' : ` after ${elapsed} ms`}`
}

async function headDeadlines (t: Test, direction: Direction): Promise<void> {
  const name = direction.name
  const [quiet, slow, later] = await Promise.all([
    (async () => {
      const started = Date.now()
      return await silent(await direction.open(t, 'raw'), started)
    })(),
    (async () => await slowHead(await direction.open(t, 'raw')))(),
    (async () => {
      const connection = await direction.open(t, 'raw')
      const first = await served(connection)
      await new Promise(resolve => setTimeout(resolve, 1500)) // idle between requests: no head is pending
      return [first, await served(connection), await slowHead(connection)]
    })()
  ])
  t.equal(quiet, 'closed at the deadline', `${name}: a connection that sends nothing is closed after timeouts.head`)
  t.equal(slow, '408, closed', `${name}: a head still incomplete after timeouts.head: 408, then close`)
  t.same(later, ['200 /public/ok', '200 /public/ok', '408, closed'], `${name}: an idle kept-alive connection is served after 1.5 s; its next slow head gets 408`)
  t.equal(direction.recorder.seen.filter(request => request.target === '/public/slow').length, 0, `${name}: no slow head reached the backend`)
  await counted(t, direction.sidecar, 'raw', 'head_timeout', { direction: name })
}

void t.test('attack limits – a head not complete within timeouts.head: 408 and close, from the connection\'s start or the head\'s first byte', async t => {
  const server = await stand.startServer({ timeouts: { head: 1 } })
  const client = await stand.startClient({ timeouts: { head: 1 } })
  await Promise.all(stand.directionsFor(server, client).map(async direction => { await headDeadlines(t, direction) }))
})

const head = (lines: number, filler = ''): string => ['GET /public/big HTTP/1.1', 'Host: backend.test', ...Array.from({ length: lines - 1 }, (_v, n) => `X-H${n}: ${n}${n === 0 ? filler : ''}`)].join('\r\n') + '\r\n\r\n'

void t.test('attack limits – by default, 101 header lines or a head over 64 KiB: 431; 100 lines and a 60 KiB head are served', async t => {
  for (const direction of stand.directions) {
    for (const [label, bytes] of [['100 header lines', head(100)], ['a 60 KiB head', head(2, 'a'.repeat(60 * 1024))]]) {
      const connection = await direction.open(t, 'raw')
      connection.write(bytes)
      const response = await connection.response(false, 3000).catch((err: Error) => err)
      t.equal(response instanceof Error ? response.message : response.status, 200, `${direction.name}, ${label}: served`)
    }
    await expectRefusal(t, direction, '101 header lines', head(101), 431)
    await expectRefusal(t, direction, 'a head over 64 KiB', head(2, 'a'.repeat(64 * 1024)), 431)
  }
})

void t.test('attack limits – http.maxHeaders and http.maxHeadBytes as configured: 431, counted and logged', async t => {
  const settings = { http: { maxHeaders: 20, maxHeadBytes: 4096 } }
  const server = await stand.startServer(settings)
  const client = await stand.startClient(settings)
  for (const direction of stand.directionsFor(server, client)) {
    await expectRefusal(t, direction, '21 header lines', head(21), 431)
    await expectRefusal(t, direction, 'a 5000-byte head', head(2, 'a'.repeat(5000)), 431)
    await counted(t, direction.sidecar, 'raw', 'too_many_headers', { direction: direction.name })
    await counted(t, direction.sidecar, 'raw', 'head_too_large', { direction: direction.name })
  }
})
