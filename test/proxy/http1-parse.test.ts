import t from 'tap'
import { BodyProblem, BodyReader } from '../../proxy/http1/body'
import { MAX_HEAD_BYTES, parseRequestHead, parseResponseHead, proxiedRequestHead } from '../../proxy/http1/head'
import type { Framing, RequestHead, ResponseHead } from '../../proxy/http1/head'

// The HTTP-mode data path reads message heads and delimits bodies itself (proxy/http1/). Each rule here is one
// that a lax parser gets wrong in a way that lets a request be smuggled past the policy or a response be cut.

const request = (text: string): ReturnType<typeof parseRequestHead> => parseRequestHead(Buffer.from(text, 'latin1'))
const head = (text: string): RequestHead => {
  const parsed = request(text)
  if (parsed === undefined || 'problem' in parsed) throw new Error(`not a head: ${JSON.stringify(parsed)}`)
  return parsed
}
const response = (text: string, method = 'GET'): ReturnType<typeof parseResponseHead> => parseResponseHead(Buffer.from(text, 'latin1'), 0, method)
const responseHead = (text: string, method = 'GET'): ResponseHead => {
  const parsed = response(text, method)
  if (parsed === undefined || 'problem' in parsed) throw new Error(`not a head: ${JSON.stringify(parsed)}`)
  return parsed
}

void t.test('http1 heads – a request head: line, headers as sent, framing, close and upgrade', async t => {
  const text = 'POST /v1/items?x=1 HTTP/1.1\r\nHost: a\r\nX-Mixed-Case:  value with spaces \r\nContent-Length: 5\r\n\r\nhello'
  const parsed = head(text)
  t.match(parsed, { method: 'POST', target: '/v1/items?x=1', minor: 1, framing: { kind: 'length', length: 5 }, close: false, upgrade: false, size: text.length - 'hello'.length })
  t.same(parsed.headers[1], { name: 'X-Mixed-Case', lower: 'x-mixed-case', value: 'value with spaces' })
  t.same(head('GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n').framing, { kind: 'chunked' })
  t.equal(head('GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\n').close, true)
  t.equal(head('GET / HTTP/1.0\r\n\r\n').close, true, 'HTTP/1.0 closes unless it asks for keep-alive')
  t.equal(head('GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n').close, false)
  t.equal(head('GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n').upgrade, true)
  t.equal(head('GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n').upgrade, false, 'Upgrade without Connection: upgrade is not an upgrade')
  t.equal(request('GET / HTTP/1.1\r\nHost: a\r\n'), undefined, 'incomplete: waits for the blank line')
})

void t.test('http1 heads – requests that could be smuggled or misread are refused with the reason', async t => {
  const refused: Array<[string, number, RegExp]> = [
    ['GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n', 400, /two framings/],
    ['GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n', 400, /conflicting/],
    ['GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n', 400, /conflicting/],
    ['GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n', 400, /not a number/],
    ['GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n', 400, /must be chunked/],
    ['GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n folded\r\n\r\n', 400, /malformed header line/],
    ['GET / HTTP/1.1\r\nHost: a\r\nBad Name: 1\r\n\r\n', 400, /malformed header name/],
    ['GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\x00\r\n\r\n', 400, /control character/],
    ['GET / HTTP/1.1\r\n\r\n', 400, /needs a Host/],
    ['GET  / HTTP/1.1\r\nHost: a\r\n\r\n', 400, /malformed request line/],
    ['GET / HTTP/2.0\r\nHost: a\r\n\r\n', 400, /malformed request line/],
    [`GET / HTTP/1.1\r\nHost: a\r\nX: ${'a'.repeat(MAX_HEAD_BYTES)}`, 431, /larger than/],
    [`GET / HTTP/1.1\r\nHost: a\r\nX: ${'a'.repeat(MAX_HEAD_BYTES)}\r\n\r\n`, 431, /larger than/]
  ]
  for (const [text, status, problem] of refused) t.match(request(text), { status, problem }, JSON.stringify(text.slice(0, 70)))
  t.same(head('GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n').framing, { kind: 'length', length: 5 }, 'repeated equal lengths are one length')
})

void t.test('http1 heads – a response\'s framing follows the request method and the status', async t => {
  t.same(responseHead('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n').framing, { kind: 'length', length: 3 })
  t.same(responseHead('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n', 'HEAD').framing, { kind: 'none' }, 'HEAD: no body whatever the length says')
  for (const status of [100, 204, 304]) t.same(responseHead(`HTTP/1.1 ${status} X\r\nContent-Length: 9\r\n\r\n`).framing, { kind: 'none' }, `${status}: no body`)
  const open = responseHead('HTTP/1.1 200 OK\r\n\r\n')
  t.match(open, { framing: { kind: 'close' }, close: true }, 'no length: the body runs to the close')
  t.same(responseHead('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n').framing, { kind: 'close' })
  t.equal(responseHead('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n').close, true)
  t.equal(responseHead('HTTP/1.1 200 OK\r\nContent-Length: 0\r\nKeep-Alive: timeout=5, max=100\r\n\r\n').keepAliveMs, 5000)
  t.equal(responseHead('HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n').status, 200, 'the reason phrase may be absent')
  t.match(response('HTTP/1.1 20 OK\r\n\r\n'), { status: 502, problem: /malformed status line/ })
  t.match(response('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n'), { status: 502, problem: /conflicting/ })
})

void t.test('http1 heads – a proxied request drops hop-by-hop headers, keeps the upstream alive and adds its own', async t => {
  const text = proxiedRequestHead(head('GET /a HTTP/1.1\r\nHost: h\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nProxy-Connection: x\r\nX-Drop: 1\r\nX-Keep: 2\r\n\r\n'),
    lower => lower === 'x-drop', [['x-added', 'yes']])
  t.equal(text, 'GET /a HTTP/1.1\r\nHost: h\r\nX-Keep: 2\r\nx-added: yes\r\n\r\n')
  t.equal(proxiedRequestHead(head('GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n'), () => false, []),
    'GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nconnection: upgrade\r\n\r\n')
  t.equal(proxiedRequestHead(head('GET / HTTP/1.0\r\n\r\n'), () => false, []), 'GET / HTTP/1.0\r\nconnection: keep-alive\r\n\r\n')
})

/** Feeds `bytes` to a reader in pieces cut at `cuts`; returns how many bytes it took and whether it finished. */
function feed (framing: Framing, bytes: Buffer, cuts: number[]): { taken: number, done: boolean } {
  const reader = new BodyReader(framing)
  let taken = 0
  let at = 0
  for (const end of [...cuts, bytes.length]) {
    const piece = bytes.subarray(at, end)
    const n = reader.consume(piece, 0)
    taken += n
    if (n < piece.length) break
    at = end
  }
  return { taken, done: reader.done }
}

void t.test('http1 bodies – a chunked body is delimited exactly, however the bytes are cut', async t => {
  const body = Buffer.from('5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\n', 'latin1')
  const next = Buffer.from('GET /next HTTP/1.1\r\n', 'latin1')
  const bytes = Buffer.concat([body, next])
  let checked = 0
  for (let a = 0; a <= bytes.length; a++) {
    for (let b = a; b <= bytes.length; b += 2) {
      const result = feed({ kind: 'chunked' }, bytes, [a, b])
      if (result.taken !== body.length || !result.done) t.fail(`cut at ${a}, ${b}: took ${result.taken}, done ${String(result.done)}`)
      checked++
    }
  }
  t.ok(checked > 1000, `${checked} ways of cutting, each ends at the body's last byte`)
  t.same(feed({ kind: 'length', length: 4 }, Buffer.from('abcdefg'), [1, 2]), { taken: 4, done: true })
  t.same(feed({ kind: 'none' }, Buffer.from('abc'), []), { taken: 0, done: true })
  t.same(feed({ kind: 'close' }, Buffer.from('abc'), [1]), { taken: 3, done: false }, 'close-delimited: never done until the connection ends')
})

void t.test('http1 bodies – malformed chunked bodies are refused', async t => {
  for (const text of ['zz\r\n', '5\nhello', '3\r\nabcdef\r\n', `${'1'.repeat(5000)}`]) {
    let caught: unknown
    try {
      new BodyReader({ kind: 'chunked' }).consume(Buffer.from(text, 'latin1'), 0)
    } catch (err) {
      caught = err
    }
    t.ok(caught instanceof BodyProblem, `${JSON.stringify(text.slice(0, 20))}: ${String(caught)}`)
  }
})
