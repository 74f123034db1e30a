/**
 * Hand-written streams for the differential test (differential.test.ts), a few for each smuggling shape, so that a
 * failure names the shape: what the sidecar does with each (reads it all, refuses a message, waits for more), and
 * llhttp must not read it otherwise. The first part of each is the shape; a valid request or response follows, so
 * that a different end shows.
 */
import type { MessageKind } from '../../helpers/http1-stream-result'

export type Expected = 'reads' | 'refuses' | 'waits'

export interface ShapeCase {
  readonly shape: string
  readonly expected: Expected
  readonly kind: MessageKind
  readonly text: string
  readonly methods?: readonly string[]
}

const NEXT = 'GET /next HTTP/1.1\r\nHost: a\r\n\r\n'
const NEXT_RESPONSE = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'

function request (shape: string, expected: Expected, fields: string, body = '', line = 'POST / HTTP/1.1'): ShapeCase {
  return { shape, expected, kind: 'request', text: `${line}\r\n${fields}\r\n\r\n${body}${NEXT}` }
}

function response (shape: string, expected: Expected, head: string, body = '', methods: readonly string[] = ['GET', 'GET']): ShapeCase {
  return { shape, expected, kind: 'response', text: `${head}\r\n\r\n${body}${NEXT_RESPONSE}`, methods }
}

const CHUNKED = 'Host: a\r\nTransfer-Encoding: chunked'
const FORBIDDEN_IN_TARGET = [' ', '"', '<', '>', '\\', '^', '`', '{', '|', '}', '[', ']', '#', '%', '%zz', '\x00', '\x09', '\x0b', '\x7f', '\x80', '\xa0', '\xff']

export const SHAPE_CASES: readonly ShapeCase[] = [
  request('Connection: Content-Length', 'refuses', 'Host: a\r\nConnection: Content-Length\r\nContent-Length: 5', 'hello'),
  request('Connection: Content-Length', 'refuses', 'Host: a\r\nConnection: keep-alive, content-length\r\nContent-Length: 0'),
  request('Connection: Transfer-Encoding', 'refuses', `${CHUNKED}\r\nConnection: close, Transfer-Encoding`, '0\r\n\r\n'),
  request('Connection: Host', 'refuses', 'Host: a\r\nConnection: HOST'),
  request('Connection: X-Forwarded-Client-Cert', 'refuses', 'Host: a\r\nX-Forwarded-Client-Cert: URI=spiffe://evil/x\r\nConnection: X-Forwarded-Client-Cert'),
  response('Connection: Content-Length (response)', 'reads', 'HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 2', 'hi'),
  request('Content-Length then Transfer-Encoding', 'refuses', 'Host: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked', '0\r\n\r\n'),
  request('Transfer-Encoding then Content-Length', 'refuses', `${CHUNKED}\r\nContent-Length: 3`, '0\r\n\r\n'),
  response('Transfer-Encoding and Content-Length (response)', 'refuses', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5', '0\r\n\r\n'),
  request('Content-Length twice, equal', 'refuses', 'Host: a\r\nContent-Length: 2\r\nContent-Length: 2', 'hi'),
  request('Content-Length twice, different', 'refuses', 'Host: a\r\nContent-Length: 2\r\nContent-Length: 20', 'hi'),
  request('Content-Length list', 'refuses', 'Host: a\r\nContent-Length: 2, 2', 'hi'),
  response('Content-Length list (response)', 'refuses', 'HTTP/1.1 200 OK\r\nContent-Length: 2,2', 'hi'),
  ...['+2', '-2', '2 2', '0x2', '2.0', '2;', '2a', '', '99999999999999999999', '2\t', '\xa02', '2\x0b'].map(value => request(`Content-Length ${JSON.stringify(value)}`, 'refuses', `Host: a\r\nContent-Length: ${value}`, 'hi')),
  request('Content-Length with OWS', 'reads', 'Host: a\r\nContent-Length:\t 2 ', 'hi'),
  request('Content-Length with leading zeros', 'reads', 'Host: a\r\nContent-Length: 002', 'hi'),
  request('Transfer-Encoding: chunked, chunked', 'refuses', 'Host: a\r\nTransfer-Encoding: chunked, chunked', '0\r\n\r\n'),
  request('Transfer-Encoding: chunked twice', 'refuses', `${CHUNKED}\r\nTransfer-Encoding: chunked`, '0\r\n\r\n'),
  request('Transfer-Encoding: gzip, chunked', 'refuses', 'Host: a\r\nTransfer-Encoding: gzip, chunked', '0\r\n\r\n'),
  request('Transfer-Encoding: chunked, gzip', 'refuses', 'Host: a\r\nTransfer-Encoding: chunked, gzip', '0\r\n\r\n'),
  response('Transfer-Encoding: gzip (response to the close)', 'refuses', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip', 'xyz'),
  ...['\xa0', '\x0b', '\x0c', '\t', ',x', '\x00'].map(after => request(`Transfer-Encoding: chunked${JSON.stringify(after).slice(1, -1)}`, 'refuses', `Host: a\r\nTransfer-Encoding: chunked${after}`, '0\r\n\r\n')),
  request('Transfer-Encoding: chunked followed by SP (OWS)', 'reads', 'Host: a\r\nTransfer-Encoding: chunked ', '0\r\n\r\n'),
  request('Transfer-Encoding in HTTP/1.0', 'refuses', 'Transfer-Encoding: chunked', '0\r\n\r\n', 'POST / HTTP/1.0'),
  response('Transfer-Encoding in HTTP/1.0 (response)', 'refuses', 'HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive', '0\r\n\r\n'),
  request('two Host lines', 'refuses', 'Host: a\r\nHost: b', '', 'GET / HTTP/1.1'),
  request('two Host lines, equal', 'refuses', 'Host: a\r\nhost: a', '', 'GET / HTTP/1.1'),
  request('obs-fold', 'refuses', 'Host: a\r\nX-Folded: a\r\n b', '', 'GET / HTTP/1.1'),
  request('obs-fold of Transfer-Encoding', 'refuses', 'Host: a\r\nTransfer-Encoding: gzip\r\n chunked', '0\r\n\r\n'),
  response('obs-fold (response)', 'refuses', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX: a\r\n\tb', 'hi'),
  { shape: 'bare LF line endings', expected: 'refuses', kind: 'request', text: 'GET / HTTP/1.1\nHost: a\n\nGET / HTTP/1.1\nHost: a\n\n' },
  request('bare LF inside the head', 'refuses', 'Host: a\nTransfer-Encoding: chunked\r\nX: y', '0\r\n\r\n'),
  request('bare CR inside the head', 'refuses', 'Host: a\rTransfer-Encoding: chunked\r\nX: y', '0\r\n\r\n'),
  request('whitespace before the colon', 'refuses', 'Host: a\r\nTransfer-Encoding : chunked', '0\r\n\r\n'),
  request('tab before the colon', 'refuses', 'Host: a\r\nContent-Length\t: 2', 'hi'),
  ...['\x00', '\x7f', '\x0b', '\x0c', '\x1b'].map(control => request(`control ${JSON.stringify(control)} in a value`, 'refuses', `Host: a\r\nX-A: a${control}b`, '', 'GET / HTTP/1.1')),
  request('obs-text in a value', 'reads', 'Host: a\r\nX-A: caf\xe9 \xa0x', '', 'GET / HTTP/1.1'),
  request('fragment in the target', 'refuses', 'Host: a', '', 'GET /public/x#/../../admin HTTP/1.1'),
  ...FORBIDDEN_IN_TARGET.map(byte => request(`${JSON.stringify(byte)} in the target`, 'refuses', 'Host: a', '', `GET /a${byte}b HTTP/1.1`)),
  ...['5 ', ' 5', '5\t', '+5', '-5', '0x5', 'ffffffffffffffffff', '10000000000000005', '5 ;a=b'].map(size => request(`chunk size ${JSON.stringify(size)}`, 'refuses', CHUNKED, `${size}\r\nhello\r\n0\r\n\r\n`)),
  request('chunk size with leading zeros', 'reads', CHUNKED, '0005\r\nhello\r\n000\r\n\r\n'),
  request('chunk extensions, token and quoted', 'reads', CHUNKED, '5;a;b=c;d="e \\" f"\r\nhello\r\n0;z=1\r\n\r\n'),
  ...[';a="b', ';a=b"c"', ';a="\x7f"', ';a=b c', ';a\x00', ';=b', '; a', ';a =b', ';a=\xa0', ';a,b'].map(extension => request(`chunk extension ${JSON.stringify(extension)}`, 'refuses', CHUNKED, `5${extension}\r\nhello\r\n0\r\n\r\n`)),
  request('bare LF after chunk data', 'refuses', CHUNKED, '5\r\nhello\n0\r\n\r\n'),
  request('bare CR after chunk data', 'refuses', CHUNKED, '5\r\nhello\r0\r\n\r\n'),
  request('bare LF after a chunk size', 'refuses', CHUNKED, '5\nhello\r\n0\r\n\r\n'),
  request('chunk data longer than its size', 'refuses', CHUNKED, '5\r\nhello!\r\n0\r\n\r\n'),
  request('trailer with an identity field', 'reads', CHUNKED, '0\r\nX-Forwarded-Client-Cert: URI=spiffe://evil/x\r\nHost: evil\r\n\r\n'),
  ...['Content-Length: 5', 'Transfer-Encoding: chunked', 'Connection: close', 'Proxy-Connection: close', 'Upgrade: websocket'].map(trailer => request(`trailer ${trailer}`, 'refuses', CHUNKED, `0\r\n${trailer}\r\n\r\n`)),
  request('many field lines (150)', 'refuses', `Host: a\r\n${Array.from({ length: 150 }, (_, i) => `X-${i}: ${i}`).join('\r\n')}`, '', 'GET / HTTP/1.1'),
  request('100 field lines', 'reads', `Host: a\r\n${Array.from({ length: 99 }, (_, i) => `X-${i}: ${i}`).join('\r\n')}`, '', 'GET / HTTP/1.1'),
  request('Connection: keep-alive<TAB> on HTTP/1.0', 'refuses', 'Connection: keep-alive\t', '', 'GET / HTTP/1.0'),
  request('Connection: upgrade<TAB>', 'refuses', 'Host: a\r\nConnection: upgrade\t\r\nUpgrade: websocket', '', 'GET / HTTP/1.1'),
  request('Proxy-Connection: close', 'reads', 'Host: a\r\nProxy-Connection: close', '', 'GET / HTTP/1.1'),
  request('Proxy-Connection: upgrade', 'refuses', 'Host: a\r\nProxy-Connection: upgrade\r\nUpgrade: websocket', '', 'GET / HTTP/1.1'),
  request('Upgrade naming no protocol', 'refuses', 'Host: a\r\nConnection: upgrade\r\nUpgrade: ,', '', 'GET / HTTP/1.1'),
  request('upgrade', 'reads', 'Host: a\r\nConnection: upgrade\r\nUpgrade: websocket', '', 'GET / HTTP/1.1'),
  request('CONNECT', 'reads', 'Host: a:443', '', 'CONNECT a:443 HTTP/1.1'),
  response('HEAD response with a length', 'reads', 'HTTP/1.1 200 OK\r\nContent-Length: 5', '', ['HEAD', 'GET']),
  response('204 with a length and bytes', 'refuses', 'HTTP/1.1 204 No Content\r\nContent-Length: 5', 'hello'),
  response('interim response that closes', 'refuses', 'HTTP/1.1 100 Continue\r\nConnection: close\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0'),
  response('HTTP/1.0 interim response', 'refuses', 'HTTP/1.0 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0'),
  response('101 without Connection: upgrade (the end of HTTP for llhttp too)', 'reads', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket'),
  response('101 switching to websocket', 'reads', 'HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket'),
  response('body to the close', 'reads', 'HTTP/1.1 200 OK', 'until the connection closes'),
  { shape: 'status line ended by CR CR', expected: 'refuses', kind: 'response', text: 'HTTP/1.1 304 Not Modified\r\r\r\n', methods: ['GET'] },
  { shape: 'a CR alone inside a field line', expected: 'refuses', kind: 'request', text: 'GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n' }
]
