import t from 'tap'
import { ResponseParser, closesConnection, parseHead } from '../../bench/proxy/http-response'

const response = (status: number, body: string, extra = ''): string =>
  `HTTP/1.1 ${status} X\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`
const statuses = (parser: ResponseParser, ...chunks: string[]): number[] =>
  chunks.flatMap(chunk => parser.feed(Buffer.from(chunk)).map(r => r.status))

void t.test('http response – several responses in one chunk, bodies skipped by their length', async t => {
  const parser = new ResponseParser()
  t.same(statuses(parser, response(200, 'hello') + response(404, '') + response(201, 'x'.repeat(3000))), [200, 404, 201])
})

void t.test('http response – any split of the bytes gives the same responses, one at a time', async t => {
  const wire = response(200, 'HTTP/1.1 500 inside a body\r\n\r\n') + response(204, '', 'X-A: 1\r\n').replace('Content-Length: 0\r\n', '') + response(302, 'moved')
  for (const size of [1, 2, 3, 7, 16, wire.length]) {
    const parser = new ResponseParser()
    const chunks = Array.from({ length: Math.ceil(wire.length / size) }, (_, i) => wire.slice(i * size, (i + 1) * size))
    t.same(statuses(parser, ...chunks), [200, 204, 302], `chunks of ${size} bytes`)
  }
})

void t.test('http response – a response is complete only once its whole body has arrived', async t => {
  const parser = new ResponseParser()
  t.same(statuses(parser, 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab'), [])
  t.same(statuses(parser, 'c'), [])
  t.same(statuses(parser, 'dHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'), [200, 200])
})

void t.test('http response – headers are read case-insensitively, values trimmed', async t => {
  const head = parseHead('HTTP/1.1 200 OK\r\nCONTENT-length:  12 \r\nConnection: Keep-Alive, Close')
  t.equal(head.status, 200)
  t.equal(head.headers.get('content-length'), '12')
  t.ok(closesConnection(head), 'close among other tokens, any case')
  t.notOk(closesConnection(parseHead('HTTP/1.1 200 OK\r\nConnection: keep-alive')))
  t.notOk(closesConnection(parseHead('HTTP/1.1 200 OK\r\nX-Connection: close')))
})

void t.test('http response – what this client cannot read is refused loudly', async t => {
  t.throws(() => new ResponseParser().feed(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n')), /chunked/)
  t.throws(() => new ResponseParser().feed(Buffer.from('HTTP/1.1 200 OK\r\nServer: x\r\n\r\n')), /without a usable Content-Length/)
  t.throws(() => new ResponseParser().feed(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n')), /Content-Length/)
  t.throws(() => new ResponseParser().feed(Buffer.from('SSH-2.0-OpenSSH\r\n\r\n')), /not an HTTP\/1.x status line/)
  t.throws(() => new ResponseParser().feed(Buffer.from('HTTP/1.1 200 OK\r\nno colon here\r\n\r\n')), /malformed header/)
  t.throws(() => new ResponseParser().feed(Buffer.alloc(70 * 1024, 'a')), /no end of response headers/)
})
