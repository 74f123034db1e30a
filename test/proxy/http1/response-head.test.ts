import t from 'tap'
import { response, responseHead } from '../../helpers/http1-heads'

// Response heads from an upstream (RFC 9112 §4, §6.3): the framing follows the request's method and the status;
// anything ambiguous gets the client a 502, never a guess.

void t.test('http1 response head – framing by method and status', async t => {
  t.same(responseHead('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n').framing, { kind: 'length', length: 3 })
  t.same(responseHead('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n').framing, { kind: 'chunked' })
  t.same(responseHead('HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n', 'HEAD').framing, { kind: 'none' }, 'HEAD: no body whatever the length says')
  for (const status of [100, 101, 204, 304]) t.same(responseHead(`HTTP/1.1 ${status} X\r\nContent-Length: 9\r\n\r\n`).framing, { kind: 'none' }, `${status}: no body`)
  t.match(responseHead('HTTP/1.1 200 OK\r\n\r\n'), { framing: { kind: 'close' }, close: true }, 'no length: the body runs to the close')
  t.equal(responseHead('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n').close, true)
  t.equal(responseHead('HTTP/1.1 200 OK\r\nContent-Length: 0\r\nKeep-Alive: timeout=5, max=100\r\n\r\n').keepAliveMs, 5000)
  t.match(responseHead('HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n'), { status: 200, reason: '' }, 'the reason phrase may be absent')
  t.match(responseHead('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n'), { status: 404, reason: 'Not Found' })
  t.equal(responseHead('HTTP/1.1 200 OK\r\nContent-Length: 0\r\nProxy-Connection: close\r\n\r\n').close, true, 'llhttp reads Proxy-Connection as Connection')
})

void t.test('http1 response head – ambiguous or malformed responses are refused with 502', async t => {
  const refused: Array<[string, RegExp]> = [
    ['HTTP/1.1 20 OK\r\n\r\n', /malformed status line/],
    ['HTTP/2 200 OK\r\n\r\n', /malformed status line/],
    ['HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n', /more than one Content-Length/],
    ['HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n', /two framings/],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n', /not supported/],
    ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n', /more than once/],
    ['HTTP/1.1 204 No Content\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n', /two framings/],
    ['HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', /HTTP\/1.0/],
    ['HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n', /control character/],
    ['HTTP/1.1 200 OK\r\n folded: x\r\n\r\n', /malformed field line/],
    ['HTTP/1.1 200 OK\r\nContent-Length: 0\r\nProxy-Connection: upgrade\r\n\r\n', /Proxy-Connection may not announce an upgrade/],
    ['HTTP/1.1 200 OK\r\nContent-Length: 0\t\r\n\r\n', /tab in or after its value/],
    ['HTTP/1.1 100 Continue\r\nConnection: close\r\n\r\n', /interim response may not close/],
    ['HTTP/1.0 103 Early Hints\r\n\r\n', /interim response may not close/]
  ]
  for (const [text, problem] of refused) t.match(response(text), { status: 502, problem }, JSON.stringify(text.slice(0, 60)))
  const many = Array.from({ length: 101 }, (_v, i) => `X-${i}: ${i}\r\n`).join('')
  t.match(response(`HTTP/1.1 200 OK\r\n${many}\r\n`), { status: 502, limit: 'too_many_headers' })
})
