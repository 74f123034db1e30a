import t from 'tap'
import { request, requestHead } from '../../helpers/http1-heads'

// Request heads as the sidecar reads them (RFC 9112 §3, §5, §6, §9). Every refusal here is one that a laxer reading
// turns into a request smuggled past the policy, an identity field dropped or moved, or a target servers disagree on.

void t.test('http1 request head – line, fields as sent, framing, close, connection options and upgrade', async t => {
  const text = 'POST /v1/items?x=1 HTTP/1.1\r\nHost: a\r\nX-Mixed-Case: \t value with spaces \t\r\nContent-Length: 5\r\n\r\nhello'
  const head = requestHead(text)
  t.match(head, { method: 'POST', target: '/v1/items?x=1', form: 'origin', forwardTarget: '/v1/items?x=1', authority: 'a', minor: 1, framing: { kind: 'length', length: 5 }, close: false, upgrade: [], size: text.length - 5 })
  t.same(head.headers[1], { name: 'X-Mixed-Case', lower: 'x-mixed-case', value: 'value with spaces' }, 'only SP and HTAB trimmed')
  t.same(requestHead('GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n').framing, { kind: 'chunked' })
  t.equal(requestHead('GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\n').close, true)
  t.equal(requestHead('GET / HTTP/1.0\r\n\r\n').close, true, 'HTTP/1.0 closes unless it asks for keep-alive')
  t.equal(requestHead('GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n').close, false)
  t.same(requestHead('GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: WebSocket, h2c\r\n\r\n').upgrade, ['websocket', 'h2c'])
  t.same(requestHead('GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n').upgrade, [], 'Upgrade without Connection: upgrade is not an upgrade')
  t.same(requestHead('GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade:\r\n\r\n').upgrade, [], 'nor with an empty Upgrade (as for llhttp)')
  t.match(request('GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: ,\r\n\r\n'), { status: 400, problem: /Upgrade names no protocol/ }, 'an upgrade for llhttp')
  t.same(requestHead('GET / HTTP/1.1\r\nHost: a\r\nConnection: x-hop, , keep-alive\r\n\r\n').connectionOptions, ['x-hop', 'keep-alive'], 'empty list elements ignored')
  t.equal(request('GET / HTTP/1.1\r\nHost: a\r\n'), undefined, 'incomplete: waits for the blank line')
})

void t.test('http1 request head – target forms: origin, absolute (turned into origin-form with its authority), asterisk, authority', async t => {
  t.match(requestHead('GET http://Api.Example:8080/v1/x?y=1 HTTP/1.1\r\nHost: other\r\n\r\n'), { form: 'absolute', forwardTarget: '/v1/x?y=1', authority: 'Api.Example:8080' })
  t.match(requestHead('GET https://api HTTP/1.1\r\nHost: api\r\n\r\n'), { form: 'absolute', forwardTarget: '/', authority: 'api' })
  t.match(requestHead('GET http://[::1]:80/a HTTP/1.1\r\nHost: x\r\n\r\n'), { authority: '[::1]:80' })
  t.match(requestHead('OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n'), { form: 'asterisk', forwardTarget: '*' })
  t.match(requestHead('CONNECT api.example:443 HTTP/1.1\r\nHost: api.example:443\r\n\r\n'), { form: 'authority', authority: 'api.example:443' })
  t.match(requestHead("GET /a/b;c=d/@x:y/!$&'()*+,=~-._%7E?q=/?&a=%20 HTTP/1.1\r\nHost: a\r\n\r\n"), { form: 'origin' }, 'every character RFC 3986 allows')
})

void t.test('http1 request head – a target with a byte RFC 9112 §3.2 does not allow is refused', async t => {
  const bad = ['/public/x#/../../admin/secret', '/a#', '/a"b', '/a<b', '/a>b', '/a\\b', '/a^b', '/a`b', '/a{b', '/a|b', '/a}b', '/a[0]', '/?a[]=1',
    '/a%', '/a%2', '/a%zz', '/a\x7f', '/caf\xe9', 'http://user@host/a', 'ftp://host/a', 'host:80', '*', 'http://host/a%2', 'http://host/a%g1']
  for (const target of bad) t.match(request(`GET ${target} HTTP/1.1\r\nHost: a\r\n\r\n`), { status: 400 }, JSON.stringify(target))
  t.match(request('GET /a b HTTP/1.1\r\nHost: a\r\n\r\n'), { status: 400, problem: /malformed request line/ }, 'a space')
  t.match(request('GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n'), { status: 400 }, 'a tab')
})

void t.test('http1 request head – methods llhttp does not know get 501, versions other than 1.0 and 1.1 get 505', async t => {
  t.match(request('BREW / HTTP/1.1\r\nHost: a\r\n\r\n'), { status: 501, problem: /method "BREW"/ })
  t.match(request('get / HTTP/1.1\r\nHost: a\r\n\r\n'), { status: 501 }, 'methods are case-sensitive')
  t.match(request('PRI * HTTP/2.0\r\n\r\n'), { status: 505 }, 'the HTTP/2 preface')
  t.match(request('GET / HTTP/1.2\r\nHost: a\r\n\r\n'), { status: 505 })
  t.match(request('GET / HTTP/0.9\r\nHost: a\r\n\r\n'), { status: 505 })
  for (const method of ['GET', 'PURGE', 'M-SEARCH', 'QUERY']) t.match(requestHead(`${method} / HTTP/1.1\r\nHost: a\r\n\r\n`), { method })
})

void t.test('http1 request head – framing two parsers could read differently is refused', async t => {
  const refused: Array<[string, number, RegExp]> = [
    ['Content-Length: 5\r\nTransfer-Encoding: chunked', 400, /two framings/],
    ['Content-Length: 5\r\nContent-Length: 6', 400, /more than one Content-Length/],
    ['Content-Length: 5\r\nContent-Length: 5', 400, /more than one Content-Length/],
    ['Content-Length: 5, 5', 400, /not one number/],
    ['Content-Length: -1', 400, /not one number/],
    ['Content-Length: +5', 400, /not one number/],
    ['Content-Length: 1234567890123456', 400, /not one number/],
    ['Transfer-Encoding: chunked, chunked', 400, /more than once/],
    ['Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked', 400, /more than once/],
    ['Transfer-Encoding: chunked, gzip', 400, /last/],
    ['Transfer-Encoding: gzip, chunked', 501, /"gzip" is not supported/],
    ['Transfer-Encoding: identity', 501, /not supported/],
    ['Transfer-Encoding: chunked\xa0', 400, /not a list of codings/],
    ['Transfer-Encoding: chunked\x0b', 400, /control character/],
    ['Transfer-Encoding: chunked\x0c', 400, /control character/],
    ['Transfer-Encoding: ,chunked', 400, /not a list/],
    ['Transfer-Encoding: \x0bchunked', 400, /control character/],
    // llhttp takes a tab after a value for part of it: `5\t` is no length, `chunked\t` no chunked.
    ['Content-Length: 5\t', 400, /tab in or after its value/],
    ['Transfer-Encoding: chunked\t', 400, /tab in or after its value/],
    ['Transfer-Encoding: gzip\t, chunked', 400, /tab in or after its value/]
  ]
  for (const [fields, status, problem] of refused) t.match(request(`POST / HTTP/1.1\r\nHost: a\r\n${fields}\r\n\r\n`), { status, problem }, JSON.stringify(fields))
  t.match(request('POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n'), { status: 400, problem: /HTTP\/1.0/ }, 'Transfer-Encoding in HTTP/1.0')
  t.same(requestHead('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n').framing, { kind: 'length', length: 7 })
  t.same(requestHead('POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\t7 \r\n\r\n').framing, { kind: 'length', length: 7 }, 'a tab before the value is whitespace')
})

void t.test('http1 request head – a tab after the start of a Connection value is refused: llhttp reads `keep-alive\\t` as another option', async t => {
  for (const value of ['keep-alive\t', 'upgrade\t', 'keep-alive\t, x', 'close\t']) {
    t.match(request(`GET / HTTP/1.0\r\nHost: a\r\nConnection: ${value}\r\nUpgrade: websocket\r\n\r\n`), { status: 400, problem: /tab in or after its value/ }, JSON.stringify(value))
  }
  t.equal(requestHead('GET / HTTP/1.0\r\nConnection:\tkeep-alive\r\n\r\n').close, false, 'a tab before the value is whitespace')
})

void t.test('http1 request head – Proxy-Connection, which llhttp reads as Connection: close closes, upgrade is refused', async t => {
  t.equal(requestHead('GET / HTTP/1.1\r\nHost: a\r\nProxy-Connection: close\r\n\r\n').close, true)
  t.equal(requestHead('GET / HTTP/1.0\r\nProxy-Connection: keep-alive\r\n\r\n').close, true, 'only Connection keeps an HTTP/1.0 connection')
  t.match(request('GET / HTTP/1.1\r\nHost: a\r\nProxy-Connection: upgrade\r\nUpgrade: websocket\r\n\r\n'), { status: 400, problem: /Proxy-Connection may not ask for an upgrade/ })
})

void t.test('http1 request head – Host: exactly one on HTTP/1.1, and a valid one', async t => {
  t.match(request('GET / HTTP/1.1\r\n\r\n'), { status: 400, problem: /needs a Host/ })
  t.match(request('GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'), { status: 400, problem: /more than one Host/ })
  t.match(request('GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n'), { status: 400, problem: /more than one Host/ })
  t.match(request('GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n'), { status: 400, problem: /more than one Host/ })
  for (const host of ['a b', 'a/b', 'user@a', 'a:b', '[::1', 'a\\b']) t.match(request(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`), { status: 400, problem: /is not host/ }, host)
  for (const host of ['a.example:8080', '[::1]:80', '127.0.0.1', '']) t.match(requestHead(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`), { authority: host }, JSON.stringify(host))
})

void t.test('http1 request head – a Connection option may not name a framing, routing or identity field', async t => {
  for (const named of ['Content-Length', 'transfer-encoding', 'HOST', 'X-Forwarded-Client-Cert', 'x-forwarded-for', 'X-Forwarded-Proto', 'x-forwarded-port', 'Forwarded']) {
    t.match(request(`GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, ${named}\r\n\r\n`), { status: 400, problem: /Connection may not name/ }, named)
  }
})

void t.test('http1 request head – malformed field lines and control characters are refused', async t => {
  const refused: Array<[string, RegExp]> = [
    ['X-A: 1\r\n folded', /malformed field line/],
    ['X-A: 1\r\n\tfolded', /malformed field line/],
    ['Bad Name: 1', /malformed field name/],
    ['X-A : 1', /malformed field name/],
    [': no name', /malformed field name/],
    ['no colon', /malformed field line/],
    ['X-A: 1\x00', /control character/],
    ['X-A: a\x7fb', /control character/],
    ['X-A: a\rb', /control character/],
    ['X-A: a\nX-B: b', /CRLF/]
  ]
  for (const [line, problem] of refused) t.match(request(`GET / HTTP/1.1\r\nHost: a\r\n${line}\r\n\r\n`), { status: 400, problem }, JSON.stringify(line))
  t.match(request('GET / HTTP/1.1\nHost: a\r\n\r\n'), { status: 400 }, 'a bare LF ending the request line')
  t.match(request('GET  / HTTP/1.1\r\nHost: a\r\n\r\n'), { status: 400, problem: /malformed request line/ })
  t.match(requestHead('GET / HTTP/1.1\r\nHost: a\r\nX-A: caf\xe9\r\n\r\n').headers[1], { value: 'caf\xe9' }, 'obs-text is a valid value byte')
})

void t.test('http1 request head – limits: header lines (431 past http.maxHeaders) and head bytes (431)', async t => {
  const fields = (n: number): string => Array.from({ length: n }, (_v, i) => `X-${i}: ${i}\r\n`).join('')
  t.match(requestHead(`GET / HTTP/1.1\r\nHost: a\r\n${fields(99)}\r\n`), { method: 'GET' }, '100 lines with Host')
  t.match(request(`GET / HTTP/1.1\r\nHost: a\r\n${fields(100)}\r\n`), { status: 431, limit: 'too_many_headers' })
  t.match(request(`GET / HTTP/1.1\r\nHost: a\r\n${fields(10)}\r\n`, { maxHeaders: 10, maxHeadBytes: 65536 }), { status: 431, limit: 'too_many_headers' })
  t.match(request(`GET / HTTP/1.1\r\nHost: a\r\nX: ${'a'.repeat(70000)}\r\n\r\n`), { status: 431, limit: 'head_too_large' })
})
