import t from 'tap'
import type { Test } from 'tap'
import { bytesSince, expectRefusal, fieldPairs, jsonBody, servesNormally, startAttackStand, tokensOf } from '../helpers/attack-stand'
import type { AttackStand, Direction } from '../helpers/attack-stand'
import { RawConnection } from '../helpers/raw-http'
import type { RawResponse } from '../helpers/raw-http'
import { openMtls } from '../helpers/raw-mtls'

// Upgrades and what upstreams answer, attacked in both directions (a peer over mutual TLS straight to the server
// sidecar's inbound listener; the local app through the client sidecar's outbound one): only the listener's
// allowed upgrades (default: websocket) are forwarded as upgrades, h2c is forwarded as a plain request, a 101 that
// no allowed upgrade asked for is a 502, and nothing after it is tunnelled; a broken or ambiguous response is a
// 502, never passed on for the client to frame its own way.

let stand: AttackStand
t.before(async () => { stand = await startAttackStand() })
t.teardown(async () => { await stand.close() })

/** The HTTP/2 connection preface (RFC 9113 §3.4), then a request the policy denies, as a tunnel would carry them. */
const AFTER_SWITCH = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nGET /private/tunnelled HTTP/1.1\r\nHost: backend.test\r\n\r\n'
const H2C = ['Connection: Upgrade, HTTP2-Settings', 'Upgrade: h2c', 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA']
const WEBSOCKET = ['Connection: Upgrade', 'Upgrade: websocket', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13']
const request = (path: string, fields: string[] = [], body = ''): string => `GET ${path} HTTP/1.1\r\nHost: backend.test\r\n${fields.map(field => `${field}\r\n`).join('')}\r\n${body}`

/** What a forwarded request must not carry once its upgrade was not allowed: Upgrade, HTTP2-Settings, or Connection naming them. */
function upgradeTraces (fields: Array<[string, string]>): string[] {
  const names = fields.map(([name]) => name.toLowerCase()).filter(name => name === 'upgrade' || name === 'http2-settings')
  return [...names, ...tokensOf(fields, 'connection').filter(token => token === 'upgrade' || token === 'http2-settings')]
}

/**
 * After AFTER_SWITCH was sent on `connection`: it is closed, or what came is a refusal of the preface as HTTP
 * (400, 501 or 505); either way nothing of it reached the backend (`arrived`).
 */
async function notTunnelled (t: Test, name: string, connection: RawConnection, arrived: () => string): Promise<void> {
  const next = await connection.response(false, 2000).catch(() => undefined)
  if (next === undefined) t.ok(await connection.endsWithin(1000), `${name}: the connection is closed`)
  else t.ok([400, 501, 505].includes(next.status), `${name}: the preface is refused as HTTP (${next.line})`)
  t.notMatch(arrived(), /PRI \*|\/private/, `${name}: nothing after it reached the backend`)
}

const sidecarError = (response: RawResponse): string => `${response.status} ${typeof jsonBody(response)?.error === 'string' ? 'JSON error' : JSON.stringify(response.body.toString().slice(0, 60))}`

void t.test('attack upgrades – Upgrade: h2c is forwarded as a plain request; the HTTP/2 preface after it is refused as HTTP, never tunnelled', async t => {
  for (const direction of stand.directions) {
    const path = `/public/h2c-${direction.name}`
    const upgrades = stand.app.upgrades.length
    const connection = await direction.open(t, 'app')
    connection.write(request(path, H2C))
    const response = await connection.response(false, 3000)
    t.equal(response.status, 200, `${direction.name}: the app's plain response, no 101 (${response.line})`)
    const seen = stand.app.seen.find(request => request.url === path)
    t.same(seen === undefined ? 'not as a plain request' : upgradeTraces(fieldPairs(seen.rawHeaders)), [], `${direction.name}: the app saw a plain request: no Upgrade, HTTP2-Settings or Connection: upgrade`)
    t.equal(stand.app.upgrades.length, upgrades, `${direction.name}: the app was never asked to switch`)
    const tunnelled = (): string => Buffer.concat(stand.app.upgrades.slice(upgrades).flatMap(upgrade => upgrade.tunnelled)).toString('latin1')
    const seenBefore = stand.app.seen.length
    connection.write(AFTER_SWITCH)
    await notTunnelled(t, direction.name, connection, () => tunnelled() + stand.app.seen.slice(seenBefore).map(request => `${request.method} ${request.url}`).join(' '))
    await servesNormally(t, direction, 'app')
  }
})

void t.test('attack upgrades – what each sidecar sends on for an h2c upgrade carries no Upgrade, HTTP2-Settings or Connection: upgrade', async t => {
  for (const direction of stand.directions) {
    const seen = direction.recorder.seen.length
    const connection = await direction.open(t, 'raw')
    connection.write(request('/public/h2c-raw', H2C))
    t.equal((await connection.response(false, 3000)).status, 200, `${direction.name}: forwarded`)
    t.same(upgradeTraces(direction.recorder.seen[seen]?.fields ?? []), [], `${direction.name}: as a plain request`)
  }
})

/** A request to the backend's `/public/switch` (a 101 whatever was asked): 502, and nothing after it tunnelled. */
async function unaskedSwitch (t: Test, direction: Direction, label: string, fields: string[]): Promise<void> {
  const name = `${direction.name}, ${label}`
  const arrived = bytesSince(direction.recorder)
  const connection = await direction.open(t, 'raw')
  connection.write(request('/public/switch', fields))
  const response = await connection.response(false, 3000).catch((err: Error) => err)
  t.equal(response instanceof Error ? response.message : sidecarError(response), '502 JSON error', `${name}: a 101 nothing allowed is a 502`)
  connection.write(AFTER_SWITCH)
  await notTunnelled(t, name, connection, arrived)
  await servesNormally(t, direction)
}

void t.test('attack upgrades – a backend that answers 101 to a request that asked for no allowed upgrade: 502, nothing after it tunnelled', async t => {
  for (const direction of stand.directions) {
    await unaskedSwitch(t, direction, 'a plain GET', [])
    await unaskedSwitch(t, direction, 'an h2c upgrade', H2C)
  }
})

void t.test('attack upgrades – a broken or ambiguous response (Content-Length and chunked, two lengths, a bad chunk size): 502', async t => {
  for (const direction of stand.directions) {
    for (const path of ['/public/cl-te', '/public/two-lengths', '/public/bad-chunk']) {
      const name = `${direction.name}, ${path}`
      const connection = await direction.open(t, 'raw')
      connection.write(request(path))
      const response = await connection.response(false, 3000).catch((err: Error) => err)
      t.equal(response instanceof Error ? response.message : sidecarError(response), '502 JSON error', `${name}: 502 from the sidecar`)
      if (!(response instanceof Error)) t.equal(response.headers.connection?.toLowerCase(), 'close', `${name}: connection: close`)
      t.ok(await connection.endsWithin(1000), `${name}: the connection is closed`)
      await servesNormally(t, direction)
    }
  }
})

void t.test('attack upgrades – an upgrade request with a body: 400', async t => {
  for (const direction of stand.directions) {
    await expectRefusal(t, direction, 'a WebSocket upgrade with Content-Length', request('/public/ws', [...WEBSOCKET, 'Content-Length: 5'], 'hello'), 400)
    await expectRefusal(t, direction, 'a WebSocket upgrade with a chunked body', request('/public/ws', [...WEBSOCKET, 'Transfer-Encoding: chunked'], '5\r\nhello\r\n0\r\n\r\n'), 400)
  }
})

void t.test('attack upgrades – an upgrade is decided like any request: a WebSocket upgrade to /private gets 403, nothing reaches the app', async t => {
  for (const direction of stand.directions) {
    const before = { seen: stand.app.seen.length, upgrades: stand.app.upgrades.length }
    const connection = await direction.open(t, 'app')
    connection.write(request('/private/ws', WEBSOCKET))
    const response = await connection.response(false, 3000)
    t.match({ status: response.status, body: jsonBody(response) }, { status: 403, body: { error: 'denied by policy', rule: String, reason: String } }, `${direction.name}: 403`)
    connection.write(Buffer.from([0x81, 0x85, 1, 2, 3, 4, 0x69, 0x67, 0x6f, 0x68, 0x6e])) // a masked text frame, as if switched
    await connection.endsWithin(500)
    t.same({ seen: stand.app.seen.length, upgrades: stand.app.upgrades.length }, before, `${direction.name}: the app saw nothing`)
    await servesNormally(t, direction, 'app')
  }
})

void t.test('attack upgrades – a listener with upgrades: [] forwards a WebSocket upgrade request as a plain request', async t => {
  const allowed = await stand.inbound.open(t, 'app')
  allowed.write(request('/public/ws-default', WEBSOCKET))
  t.equal((await allowed.response(false, 3000)).status, 101, 'the default list (websocket): switched')
  const server = await stand.startServer({}, { upgrades: [] })
  const client = await stand.startClient({}, { upgrades: [] })
  const upgrades = stand.app.upgrades.length
  const inbound = await openMtls(server.port('app'), stand.svid('client'))
  t.teardown(() => { inbound.close() })
  inbound.write(request('/public/ws-none', WEBSOCKET))
  t.equal((await inbound.response(false, 3000)).status, 200, 'inbound: the app\'s plain response')
  const plain = stand.app.seen.find(seen => seen.url === '/public/ws-none')
  t.same(plain === undefined ? 'not as a plain request' : upgradeTraces(fieldPairs(plain.rawHeaders)), [], 'inbound: a plain request at the app, no upgrade')
  t.equal(stand.app.upgrades.length, upgrades, 'inbound: the app was never asked to switch')
  const seen = stand.sink.seen.length
  const outbound = await RawConnection.open(client.port('raw'))
  t.teardown(() => { outbound.close() })
  outbound.write(request('/public/ws-none', WEBSOCKET))
  t.equal((await outbound.response(false, 3000)).status, 200, 'outbound: forwarded')
  t.same(upgradeTraces(stand.sink.seen[seen]?.fields ?? []), [], 'outbound: as a plain request')
})
