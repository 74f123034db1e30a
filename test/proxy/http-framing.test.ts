import t from 'tap'
import { X509Certificate } from 'node:crypto'
import { parseXfcc } from '../../spiffe/peer-header'
import { TD } from '../helpers/mesh'
import { BLOB, CHUNKS, CLOSE_DELIMITED, sha256, startHttpStand } from '../helpers/http-stand'
import type { AppRequest, HttpStand } from '../helpers/http-stand'
import { chunked, parseRequest, parseResponse, requestBytes } from '../helpers/raw-http'

// HTTP/1.1 message framing through a sidecar pair (the client's outbound HTTP listener, mutual TLS, the server's
// inbound HTTP listener, the app), black box, with exact bytes on a raw socket: request and response bodies of
// every framing, pipelining, responses without a body, 100-continue, close-delimited responses, malformed
// requests, and the identity header under every spelling a client may try.

let stand: HttpStand
t.before(async () => { stand = await startHttpStand() })
t.teardown(async () => { await stand.close() })


void t.test('raw-http helpers – each framing parsed, every incomplete prefix waits for more', async t => {
  const complete = (text: string | Buffer, parse: (b: Buffer) => unknown): boolean => {
    const bytes = Buffer.from(text)
    return bytes.every((_byte, n) => parse(bytes.subarray(0, n)) === undefined)
  }
  const chunkedResponse = Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'), Buffer.from('3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n'), Buffer.from('next')])
  t.ok(complete(chunkedResponse.subarray(0, -4), parseResponse), 'chunked')
  t.match(parseResponse(chunkedResponse), { value: { status: 200, framing: 'chunked', chunks: [3, 10], trailers: [['X-Trailer', '1']], body: Buffer.from('abc0123456789') }, used: chunkedResponse.length - 4 })
  const length = 'HTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1'
  t.match(parseResponse(Buffer.from(length)), { value: { status: 201, framing: 'length', body: Buffer.from('hello') }, used: length.length - 8 })
  for (const [text, head] of [['HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n', true], ['HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n', false], ['HTTP/1.1 100 Continue\r\n\r\n', false]] as const) {
    t.match(parseResponse(Buffer.from(text), head), { value: { framing: 'none', body: Buffer.alloc(0) }, used: text.length }, text.split('\r\n')[0])
  }
  const closeDelimited = Buffer.from('HTTP/1.0 200 OK\r\n\r\nuntil the end')
  t.equal(parseResponse(closeDelimited), undefined, 'close-delimited: waits for the end')
  t.match(parseResponse(closeDelimited, false, true), { value: { framing: 'close', body: Buffer.from('until the end') } })
  const post = requestBytes('POST', '/x', [['Transfer-Encoding', 'chunked']], chunked(['ab', 'cde']))
  t.ok(complete(post, parseRequest))
  t.match(parseRequest(post), { value: { method: 'POST', target: '/x', headers: { host: 'sidecar.test' }, body: Buffer.from('abcde'), chunks: [2, 3] }, used: post.length })
  t.throws(() => parseResponse(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n')), /bad chunk size/)
})

void t.test('http framing – a Content-Length body and a chunked body (extensions, upper-case hex, many writes) reach the app intact', async t => {
  const connection = await stand.open(t, 'app')
  const body = BLOB.subarray(0, 100 * 1024)
  connection.write(requestBytes('POST', '/echo/length?n=1', [['Content-Type', 'application/octet-stream']], body))
  const first = await connection.response()
  t.equal(first.status, 200)
  t.match(JSON.parse(first.body.toString()), { method: 'POST', url: '/echo/length?n=1', length: body.length, sha256: sha256(body) })

  const pieces = [Buffer.from('hello'), BLOB.subarray(0, 26), BLOB.subarray(100, 100 + 65536), Buffer.from('!')]
  connection.write(requestBytes('PUT', '/echo/chunked', [['Transfer-Encoding', 'chunked']]))
  for (const [n, piece] of pieces.entries()) {
    const size = piece.length.toString(16)
    connection.write(Buffer.concat([Buffer.from(`${n % 2 === 0 ? size : size.toUpperCase()}${n === 1 ? ';name=value' : ''}\r\n`), piece, Buffer.from('\r\n')]))
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  connection.write('0\r\n\r\n')
  const second = await connection.response()
  t.equal(second.status, 200)
  t.match(JSON.parse(second.body.toString()), { method: 'PUT', url: '/echo/chunked', length: 5 + 26 + 65536 + 1, sha256: sha256(Buffer.concat(pieces)) })
})

void t.test('http framing – a 1 MiB Content-Length response and a chunked response (chunks of 1 B to 64 KiB) arrive intact', async t => {
  const connection = await stand.open(t, 'app')
  connection.write(requestBytes('GET', `/bytes/${BLOB.length}`))
  const big = await connection.response()
  t.equal(big.status, 200)
  t.equal(big.body.length, BLOB.length)
  t.equal(sha256(big.body), sha256(BLOB))

  const scripted = await stand.open(t, 'scripted')
  for (let round = 0; round < 2; round++) {
    scripted.write(requestBytes('GET', '/chunked'))
    const response = await scripted.response()
    t.equal(response.status, 200)
    t.equal(sha256(response.body), sha256(Buffer.concat(CHUNKS)), `round ${round + 1}: the same bytes`)
    t.not(response.framing, 'close', 'delimited, so the connection carries the next request')
  }
})

void t.test('http framing – three pipelined requests in one write get their three responses in order', async t => {
  const connection = await stand.open(t, 'app')
  // The first is answered last by the app: the responses must still come back in request order.
  const targets = ['/pipe/1?delay=150', '/pipe/2', '/pipe/3?delay=50']
  connection.write(Buffer.concat(targets.map(target => requestBytes('GET', target))))
  for (const target of targets) {
    const response = await connection.response()
    t.equal(response.status, 200)
    t.equal(response.body.toString(), target)
  }
  t.equal(connection.buffer.length, 0, 'nothing more')
})

void t.test('http framing – a HEAD response with Content-Length: 1000 has no body, and the next request on the connection is served', async t => {
  const connection = await stand.open(t, 'scripted')
  for (let round = 0; round < 2; round++) {
    connection.write(requestBytes('HEAD', '/head'))
    const head = await connection.response(true)
    t.equal(head.status, 200)
    t.equal(head.headers['content-length'], '1000', 'the length of what a GET would get')
    connection.write(requestBytes('GET', `/after-head/${round}`))
    const next = await connection.response()
    t.equal(next.body.toString(), `/after-head/${round}`, 'no byte of the next response was taken for a HEAD body')
  }
})

void t.test('http framing – 204 and 304 (with a Content-Length) end at their head; the next request is served', async t => {
  const connection = await stand.open(t, 'scripted')
  connection.write(requestBytes('DELETE', '/204'))
  const noContent = await connection.response()
  t.match(noContent, { status: 204, headers: { 'x-reply': '204' }, body: Buffer.alloc(0) })
  connection.write(requestBytes('GET', '/after-204'))
  t.equal((await connection.response()).body.toString(), '/after-204')
  connection.write(requestBytes('GET', '/304', [['If-None-Match', '"v1"']]))
  const notModified = await connection.response()
  t.match(notModified, { status: 304, headers: { etag: '"v1"' }, body: Buffer.alloc(0) })
  connection.write(requestBytes('GET', '/after-304'))
  t.equal((await connection.response()).body.toString(), '/after-304')
  t.equal(connection.buffer.length, 0, 'nothing more')
})

void t.test('http framing – Expect: 100-continue gets 100 Continue before the body is sent, then the final response', async t => {
  const connection = await stand.open(t, 'app')
  const body = BLOB.subarray(0, 64 * 1024)
  connection.write(requestBytes('POST', '/mirror', [['Content-Length', String(body.length)], ['Expect', '100-continue']]))
  const interim = await connection.response()
  t.equal(interim.status, 100, 'from the sidecar or the app: the client may send the body')
  connection.write(body)
  const final = await connection.finalResponse()
  t.equal(final.status, 200)
  t.equal(sha256(final.body), sha256(body), 'the body was echoed')
  connection.write(requestBytes('GET', '/after-continue'))
  t.equal((await connection.response()).body.toString(), '/after-continue')
})

void t.test('http framing – a close-delimited response reaches the client whole, and its end is delimited for the client', async t => {
  for (const target of ['/close-delimited', '/close-delimited?close']) {
    const connection = await stand.open(t, 'scripted')
    connection.write(requestBytes('GET', target))
    const response = await connection.response()
    t.equal(response.status, 200, target)
    t.equal(sha256(response.body), sha256(CLOSE_DELIMITED), `${target}: every byte until the app closed`)
    if (response.framing === 'close') {
      t.ok(connection.ended, 'delimited by the end of the connection')
    } else {
      // Re-framed (chunked): the client's connection may carry the next request, or be closed after the response.
      connection.write(requestBytes('GET', '/after-close-delimited'))
      const next = await connection.response().catch(() => undefined)
      t.ok(next === undefined ? connection.ended : next.body.toString() === '/after-close-delimited', `${target}: ${response.framing}, then served or closed`)
    }
  }
})

void t.test('http framing – malformed requests get a 4xx, the connection is closed, the app sees nothing', async t => {
  const before = stand.app.seen.length
  const cases: Array<[string, string | Buffer, number]> = [
    ['a garbage request line', 'GARBAGE\r\n\r\n', 400],
    ['Content-Length and Transfer-Encoding: chunked (smuggling)', requestBytes('POST', '/echo/smuggle', [['Content-Length', '6'], ['Transfer-Encoding', 'chunked']], '0\r\n\r\nGET /echo/smuggled HTTP/1.1\r\nHost: x\r\n\r\n'), 400],
    ['two different Content-Lengths', requestBytes('POST', '/echo/two', [['Content-Length', '5'], ['Content-Length', '6']], 'hello!'), 400],
    ['a header section over 64 KiB', requestBytes('GET', '/echo/big', [['X-Big', 'a'.repeat(70 * 1024)]]), 431]
  ]
  for (const [name, bytes, status] of cases) {
    const connection = await stand.open(t, 'app')
    connection.write(bytes)
    const response = await connection.response().catch((err: Error) => err)
    t.equal(response instanceof Error ? response.message : response.status, status, name)
    t.ok(await connection.endsWithin(2000), `${name}: closed`)
  }
  t.equal(stand.app.seen.length, before, 'none reached the app')
})

void t.test('http framing – X-Forwarded-Client-Cert is the server sidecar\'s alone, whatever spellings and repeats the client sent', async t => {
  const connection = await stand.open(t, 'app')
  const spoof = (n: number): string => `By=spiffe://plant.example/server;URI=spiffe://plant.example/spoof-${n}`
  connection.write(requestBytes('GET', '/echo/xfcc', [
    ['X-Forwarded-Client-Cert', spoof(1)], ['x-forwarded-client-cert', spoof(2)], ['X-FORWARDED-CLIENT-CERT', spoof(3)],
    ['X_Forwarded_Client_Cert', spoof(4)], ['x_forwarded_client_cert', spoof(5)]
  ]))
  const response = await connection.response()
  t.equal(response.status, 200)
  const seen = JSON.parse(response.body.toString()) as AppRequest
  const names = seen.rawHeaders.filter((_v, n) => n % 2 === 0)
  const values = names.flatMap((name, n) => name.toLowerCase().replace(/_/g, '-') === 'x-forwarded-client-cert' ? [seen.rawHeaders[2 * n + 1]] : [])
  t.equal(values.length, 1, 'one field, under any spelling')
  const leaf = new X509Certificate((await stand.mesh.svid(`${TD}/client`)).certPem)
  t.same(parseXfcc(values[0]), [{ by: `${TD}/server`, hash: sha256(leaf.raw), uri: `${TD}/client` }])
  t.notMatch(JSON.stringify(seen.rawHeaders), 'spoof-', 'no spoofed value under any spelling')
})
