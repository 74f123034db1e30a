import t from 'tap'
import type { Test } from 'tap'
import { bytesSince, expectRefusal, servesNormally, startAttackStand, tokensOf, valuesOf } from '../helpers/attack-stand'
import type { AttackStand, Direction } from '../helpers/attack-stand'
import { chunked } from '../helpers/raw-http'

// Request smuggling and lax framing, tried as an attacker would, in both directions: a peer over mutual TLS
// straight to the server sidecar's inbound HTTP listener, and the local app in plain TCP to the client sidecar's
// outbound one (to a recording server of the test's own, so the outbound sidecar is seen refusing by itself).
// Each message that llhttp and a lax parser could frame differently is refused by the sidecar (400, 501 or 505,
// a JSON error, connection: close), not a byte of it reaches the backend, and the sidecar serves the next
// connection. What is forwarded is re-framed by the sidecar, never copied.

let stand: AttackStand
t.before(async () => { stand = await startAttackStand() })
t.teardown(async () => { await stand.close() })

/** A message of exactly these lines (CRLF after each, then an empty line) and body. */
const message = (lines: string[], body: string | Buffer = ''): Buffer => Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), Buffer.from(body)])
/** A request the policy denies, hidden in a body: it must never reach the backend as a request of its own. */
const SMUGGLED = 'GET /private/smuggled HTTP/1.1\r\nHost: backend.test\r\n\r\n'
const get = (...fields: string[]): Buffer => message(['GET /public/a HTTP/1.1', 'Host: backend.test', ...fields])
const post = (fields: string[], body: string | Buffer): Buffer => message(['POST /public/a HTTP/1.1', 'Host: backend.test', ...fields], body)
const chunkedBody = chunked(['hello']).toString('latin1')

type Case = readonly [label: string, bytes: Buffer, status: number]

async function refuseAll (t: Test, cases: readonly Case[]): Promise<void> {
  for (const direction of stand.directions) {
    for (const [label, bytes, status] of cases) await expectRefusal(t, direction, label, bytes, status)
  }
}

void t.test('attack smuggling – a Connection header naming Content-Length, Transfer-Encoding, Host or an identity header: 400', async t => {
  await refuseAll(t, [
    // A proxy that drops what Connection names would forward the head without its length, and the body after
    // it would be read by the app as a second request.
    ['Connection: Content-Length', post(['Content-Length: ' + String(SMUGGLED.length), 'Connection: Content-Length'], SMUGGLED), 400],
    ['Connection: keep-alive, Transfer-Encoding', post(['Transfer-Encoding: chunked', 'Connection: keep-alive, Transfer-Encoding'], chunkedBody), 400],
    ['Connection: HOST', get('Connection: HOST'), 400],
    ['Connection: X-Forwarded-Client-Cert', get('Connection: X-Forwarded-Client-Cert'), 400],
    ['connection: x-forwarded-for', get('connection: x-forwarded-for'), 400],
    ['Connection: X-FORWARDED-PROTO', get('Connection: X-FORWARDED-PROTO'), 400],
    ['Connection: close, x-forwarded-port', get('Connection: close, x-forwarded-port'), 400],
    ['Connection: Forwarded', get('Connection: Forwarded'), 400]
  ])
})

void t.test('attack smuggling – Content-Length with Transfer-Encoding, repeated, listed or non-numeric lengths: 400', async t => {
  await refuseAll(t, [
    ['Content-Length and Transfer-Encoding: chunked', post(['Content-Length: 5', 'Transfer-Encoding: chunked'], `0\r\n\r\n${SMUGGLED}`), 400],
    ['two equal Content-Length lines', post(['Content-Length: 5', 'Content-Length: 5'], 'hello'), 400],
    ['Content-Length: 5, 5', post(['Content-Length: 5, 5'], 'hello'), 400],
    ['Content-Length: +5', post(['Content-Length: +5'], 'hello'), 400],
    ['Content-Length: 5a', post(['Content-Length: 5a'], 'hello'), 400]
  ])
})

void t.test('attack smuggling – Transfer-Encoding on HTTP/1.0, chunked twice, and codings other than chunked: 400 or 501', async t => {
  await refuseAll(t, [
    ['HTTP/1.0 with Transfer-Encoding: chunked', message(['POST /public/a HTTP/1.0', 'Host: backend.test', 'Transfer-Encoding: chunked'], chunkedBody), 400],
    ['Transfer-Encoding: chunked, chunked', post(['Transfer-Encoding: chunked, chunked'], chunkedBody), 400],
    ['Transfer-Encoding: chunked on two lines', post(['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'], chunkedBody), 400],
    ['Transfer-Encoding: gzip', post(['Transfer-Encoding: gzip'], chunkedBody), 501],
    ['Transfer-Encoding: gzip, chunked', post(['Transfer-Encoding: gzip, chunked'], chunkedBody), 501],
    // NBSP is no whitespace: "chunked\xa0" is no coding at all (not a token), which a lax parser trims to chunked.
    ['Transfer-Encoding: chunked + NBSP', post(['Transfer-Encoding: chunked\xa0'], chunkedBody), 400],
    ['Transfer-Encoding: chunked + VT', post(['Transfer-Encoding: chunked\x0b'], chunkedBody), 400],
    ['Transfer-Encoding: chunked + FF', post(['Transfer-Encoding: chunked\x0c'], chunkedBody), 400]
  ])
})

void t.test('attack smuggling – Host missing on HTTP/1.1, repeated, or not a host[:port]: 400', async t => {
  await refuseAll(t, [
    ['no Host', message(['GET /public/a HTTP/1.1']), 400],
    ['two equal Host lines', get('Host: backend.test'), 400],
    ['Host: evil.test/x', message(['GET /public/a HTTP/1.1', 'Host: evil.test/x']), 400],
    ['Host: user@evil.test', message(['GET /public/a HTTP/1.1', 'Host: user@evil.test']), 400],
    ['Host: evil.test:port', message(['GET /public/a HTTP/1.1', 'Host: evil.test:port']), 400]
  ])
})

void t.test('attack smuggling – bare LF, obs-fold, a space before the colon, control characters in a value: 400', async t => {
  await refuseAll(t, [
    ['bare LF line ends', Buffer.from('GET /public/a HTTP/1.1\nHost: backend.test\n\n'), 400],
    ['one bare LF among CRLFs', Buffer.from('GET /public/a HTTP/1.1\r\nHost: backend.test\nX-A: 1\r\n\r\n'), 400],
    ['obs-fold', get('X-A: 1', '  folded'), 400],
    ['a space before the colon', message(['GET /public/a HTTP/1.1', 'Host : backend.test']), 400],
    ['two spaces in the request line', message(['GET  /public/a HTTP/1.1', 'Host: backend.test']), 400],
    ...['\x00', '\x0b', '\x0c', '\x7f', '\r'].map((char): Case => [`a value with 0x${char.charCodeAt(0).toString(16)}`, get(`X-A: a${char}b`), 400])
  ])
})

void t.test('attack smuggling – a method llhttp does not know: 501; CONNECT: 400; versions other than HTTP/1.0 and 1.1: 505', async t => {
  await refuseAll(t, [
    ['BREW', message(['BREW /public/a HTTP/1.1', 'Host: backend.test']), 501],
    ['CONNECT', message(['CONNECT backend.test:443 HTTP/1.1', 'Host: backend.test:443']), 400],
    ...['HTTP/0.9', 'HTTP/1.2', 'HTTP/2.0', 'HTTP/3.0'].map((version): Case => [version, message([`GET /public/a ${version}`, 'Host: backend.test']), 505])
  ])
})

/** The fields of the one request `direction`'s recorder got since `arrived` was taken, after sending `bytes`. */
async function forwarded (t: Test, direction: Direction, bytes: Buffer): Promise<{ fields: Array<[string, string]>, text: string, body: Buffer, framing: string }> {
  const arrived = bytesSince(direction.recorder)
  const seen = direction.recorder.seen.length
  const connection = await direction.open(t, 'raw')
  connection.write(bytes)
  const response = await connection.response(false, 2000)
  t.equal(response.status, 200, `${direction.name}: forwarded`)
  const request = direction.recorder.seen[seen]
  return { fields: request.fields, text: arrived(), body: request.body, framing: request.framing }
}

void t.test('attack smuggling – a forwarded body is framed by the sidecar: its own Content-Length, chunked re-chunked without extensions', async t => {
  for (const direction of stand.directions) {
    const length = await forwarded(t, direction, post(['cOnTeNt-LeNgTh: 11'], 'hello world'))
    t.equal(length.body.toString(), 'hello world', `${direction.name}: the body`)
    t.same(valuesOf(length.fields, 'content-length'), ['11'], `${direction.name}: one Content-Length`)
    t.notOk(length.fields.some(([name]) => name === 'cOnTeNt-LeNgTh'), `${direction.name}: written by the sidecar, not copied`)
    t.same(valuesOf(length.fields, 'transfer-encoding'), [], `${direction.name}: no Transfer-Encoding`)

    const rechunked = await forwarded(t, direction, post(['TrAnSfEr-EnCoDiNg: chunked'], chunked(['abc', 'defgh'], ';ext=1')))
    t.equal(rechunked.framing, 'chunked', `${direction.name}: still chunked`)
    t.equal(rechunked.body.toString(), 'abcdefgh', `${direction.name}: the chunked body`)
    t.same(tokensOf(rechunked.fields, 'transfer-encoding'), ['chunked'], `${direction.name}: one Transfer-Encoding: chunked`)
    t.notOk(rechunked.fields.some(([name]) => name === 'TrAnSfEr-EnCoDiNg'), `${direction.name}: written by the sidecar, not copied`)
    t.same(valuesOf(rechunked.fields, 'content-length'), [], `${direction.name}: no Content-Length`)
    t.notMatch(rechunked.text, ';ext=', `${direction.name}: chunk extensions dropped`)
  }
})

void t.test('attack smuggling – hop-by-hop headers and every header Connection names are not forwarded', async t => {
  const hopByHop = ['keep-alive', 'proxy-connection', 'te', 'trailer', 'http2-settings', 'x-secret', 'x-other-secret']
  for (const direction of stand.directions) {
    const request = await forwarded(t, direction, get(
      'Connection: keep-alive, X-Secret', 'connection: x-other-secret', 'X-Secret: 1', 'X-Other-Secret: 2', 'Keep-Alive: timeout=5',
      'Proxy-Connection: keep-alive', 'TE: trailers', 'Trailer: X-Checksum', 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA', 'X-Kept: yes'
    ))
    t.same(request.fields.filter(([name]) => hopByHop.includes(name.toLowerCase())), [], `${direction.name}: none of them`)
    const connection = tokensOf(request.fields, 'connection')
    t.same(connection.filter(token => !['keep-alive', 'close'].includes(token)), [], `${direction.name}: the sidecar's own Connection, if any`)
    t.same(valuesOf(request.fields, 'x-kept'), ['yes'], `${direction.name}: an end-to-end header is kept`)
    await servesNormally(t, direction)
  }
})
