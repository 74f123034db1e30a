import t from 'tap'
import { PassThrough } from 'node:stream'
import type { Socket } from 'node:net'
import { BodyWriter } from '../../../proxy/http1/body-writer'
import { requestHeadBytes, responseHeadBytes } from '../../../proxy/http1/serialize'
import { requestHead, responseHead } from '../../helpers/http1-heads'

// Heads and bodies written out again from their parsed form: the sidecar's own version, framing and connection
// handling; never the sender's hop-by-hop fields, framing fields or chunk extensions.

const rewrite = { first: [] as Array<[string, string]>, drop: (lower: string) => lower === 'x-drop', upgrade: undefined, defaultHost: 'default:80' }
const text = (bytes: Buffer): string => bytes.toString('latin1')

void t.test('http1 serialize – a request keeps end-to-end fields in order, drops hop-by-hop ones, writes its own framing', async t => {
  const head = requestHead('POST /a HTTP/1.1\r\nHost: h\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\nTrailer: X-T\r\nProxy-Connection: x\r\nX-Drop: 1\r\nX-Keep: 2\r\nUpgrade: h2c\r\nHTTP2-Settings: AAA\r\nTransfer-Encoding: chunked\r\n\r\n')
  t.equal(text(requestHeadBytes(head, { ...rewrite, first: [['x-first', 'yes']] })), 'POST /a HTTP/1.1\r\nx-first: yes\r\nHost: h\r\nX-Keep: 2\r\ntransfer-encoding: chunked\r\n\r\n')
  t.equal(text(requestHeadBytes(requestHead('PUT /b HTTP/1.1\r\nhost: h\r\ncontent-length: 007\r\n\r\n'), rewrite)), 'PUT /b HTTP/1.1\r\nhost: h\r\ncontent-length: 7\r\n\r\n')
  t.equal(text(requestHeadBytes(requestHead('GET / HTTP/1.0\r\n\r\n'), rewrite)), 'GET / HTTP/1.1\r\nhost: default:80\r\n\r\n', 'HTTP/1.0 forwarded as HTTP/1.1, with a Host')
  t.equal(text(requestHeadBytes(requestHead('GET http://api:8080/x?y HTTP/1.1\r\nHost: evil\r\nX-A: 1\r\n\r\n'), rewrite)), 'GET /x?y HTTP/1.1\r\nhost: api:8080\r\nX-A: 1\r\n\r\n', 'absolute-form: origin-form, Host from the URI')
  t.equal(text(requestHeadBytes(requestHead('GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n'), { ...rewrite, upgrade: 'websocket' })),
    'GET /ws HTTP/1.1\r\nHost: h\r\nSec-WebSocket-Key: k\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n')
})

void t.test('http1 serialize – a response: the sidecar\'s version, framing and connection handling; HEAD and 304 keep what describes the body', async t => {
  const chunked = responseHead('HTTP/1.0 200 OK\r\nX-A: 1\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nTransfer-Encoding: chunked\r\n\r\n'.replace('HTTP/1.0', 'HTTP/1.1'))
  t.equal(text(responseHeadBytes(chunked, chunked.framing, 1, false, undefined)), 'HTTP/1.1 200 OK\r\nX-A: 1\r\ntransfer-encoding: chunked\r\n\r\n')
  t.equal(text(responseHeadBytes(chunked, { kind: 'close' }, 0, true, undefined)), 'HTTP/1.1 200 OK\r\nX-A: 1\r\nconnection: close\r\n\r\n', 'to an HTTP/1.0 client: until the close')
  const length = responseHead('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nKeep-Alive: timeout=5\r\n\r\n')
  t.equal(text(responseHeadBytes(length, length.framing, 0, false, undefined)), 'HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: keep-alive\r\n\r\n')
  const head = responseHead('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n', 'HEAD')
  t.equal(text(responseHeadBytes(head, head.framing, 1, true, undefined)), 'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nconnection: close\r\n\r\n')
  const noContent = responseHead('HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n')
  t.equal(text(responseHeadBytes(noContent, noContent.framing, 1, false, undefined)), 'HTTP/1.1 204 No Content\r\n\r\n', '204: no length field')
})

void t.test('http1 serialize – bodies: chunks re-framed by the sidecar, trailers without framing or identity fields', async t => {
  const out = new PassThrough()
  const written: Buffer[] = []
  out.on('data', (chunk: Buffer) => written.push(chunk))
  let ended = false
  const writer = new BodyWriter(out as unknown as Socket, { kind: 'chunked' }, lower => lower === 'x-forwarded-client-cert', () => {}, () => { ended = true })
  writer.data(Buffer.from('hello'))
  writer.data(Buffer.alloc(0))
  writer.data(Buffer.from('0123456789'))
  writer.end([{ name: 'X-Forwarded-Client-Cert', lower: 'x-forwarded-client-cert', value: 'forged' }, { name: 'Content-Length', lower: 'content-length', value: '1' },
    { name: 'Host', lower: 'host', value: 'x' }, { name: 'Checksum', lower: 'checksum', value: 'abc' }])
  await new Promise(resolve => setImmediate(resolve))
  t.equal(Buffer.concat(written).toString('latin1'), '5\r\nhello\r\na\r\n0123456789\r\n0\r\nChecksum: abc\r\n\r\n')
  t.ok(ended)
})
