/**
 * The places in a message where a parser decides something (method, target, version, field names and values, the
 * framing and connection fields, chunk sizes and extensions, trailers, status lines, between messages), each with
 * a hole that the differential test fills with every byte, once and twice. Each message is followed by a valid one,
 * so that a different end shows.
 */
import type { MessageKind } from '../../helpers/http1-stream-result'

export interface Place { readonly name: string, readonly kind: MessageKind, readonly make: (bytes: string) => string }

const NEXT = 'GET /next HTTP/1.1\r\nHost: a\r\n\r\n'
const NEXT_RESPONSE = 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'

/** A request with `line` and `fields` (after Host), then `body`, then the next request. */
function request (name: string, fields: (hole: string) => string, line = (_: string) => 'GET / HTTP/1.1', body = (_: string) => ''): Place {
  return { name, kind: 'request', make: hole => `${line(hole)}\r\nHost: a\r\n${fields(hole)}\r\n${body(hole)}${NEXT}` }
}

/** A chunked request whose body is `body`. */
function chunked (name: string, body: (hole: string) => string): Place {
  return request(name, () => 'Transfer-Encoding: chunked\r\n', () => 'POST / HTTP/1.1', body)
}

/** A response with `line`, `fields` and a chunked or empty body as `body` says, then the next response. */
function response (name: string, line: (hole: string) => string, fields = (_: string) => 'Content-Length: 0\r\n', body = (_: string) => ''): Place {
  return { name, kind: 'response', make: hole => `${line(hole)}\r\n${fields(hole)}\r\n${body(hole)}${NEXT_RESPONSE}` }
}

export const PLACES: readonly Place[] = [
  request('method', () => '', hole => `GE${hole}T / HTTP/1.1`),
  request('target path', () => '', hole => `GET /a${hole}b HTTP/1.1`),
  request('target query', () => '', hole => `GET /a?x${hole}y HTTP/1.1`),
  request('absolute-form host', () => '', hole => `GET http://a${hole}b/ HTTP/1.1`),
  request('version', () => '', hole => `GET / HTTP/1.${hole}`),
  request('after the version', () => '', hole => `GET / HTTP/1.1${hole}`),
  { name: 'Host value', kind: 'request', make: hole => `GET / HTTP/1.1\r\nHost: a${hole}b\r\n\r\n${NEXT}` },
  request('field name', hole => `X${hole}Y: 1\r\n`),
  request('field value', hole => `X: a${hole}b\r\n`),
  request('field value start', hole => `X:${hole}ab\r\n`),
  request('field value end', hole => `X: ab${hole}\r\n`),
  request('Content-Length after', hole => `Content-Length: 1${hole}\r\n`, () => 'POST / HTTP/1.1', () => 'x'),
  request('Content-Length before', hole => `Content-Length: ${hole}1\r\n`, () => 'POST / HTTP/1.1', () => 'x'),
  request('Transfer-Encoding after chunked', hole => `Transfer-Encoding: chunked${hole}\r\n`, () => 'POST / HTTP/1.1', () => '1\r\nx\r\n0\r\n\r\n'),
  request('Connection: keep-alive, HTTP/1.0', hole => `Connection: keep-alive${hole}\r\n`, () => 'GET / HTTP/1.0'),
  request('Connection: close', hole => `Connection: close${hole}\r\n`),
  request('Connection option before close', hole => `Connection: x${hole}close\r\n`),
  request('Upgrade value', hole => `Connection: upgrade\r\nUpgrade: ${hole}\r\n`),
  chunked('chunk size', hole => `1${hole}\r\nx\r\n0\r\n\r\n`),
  chunked('chunk extension name', hole => `1;a${hole}b\r\nx\r\n0\r\n\r\n`),
  chunked('chunk extension value', hole => `1;a=b${hole}c\r\nx\r\n0\r\n\r\n`),
  chunked('chunk extension quoted value', hole => `1;a="b${hole}c"\r\nx\r\n0\r\n\r\n`),
  chunked('chunk extension quoted pair', hole => `1;a="b\\${hole}c"\r\nx\r\n0\r\n\r\n`),
  chunked('after a chunk extension', hole => `1;a=b${hole}\r\nx\r\n0\r\n\r\n`),
  chunked('after a quoted chunk extension', hole => `1;a="b"${hole}\r\nx\r\n0\r\n\r\n`),
  chunked('last chunk', hole => `0${hole}\r\n\r\n`),
  chunked('end of chunk data', hole => `1\r\nx${hole}\n0\r\n\r\n`),
  chunked('trailer name', hole => `0\r\nT${hole}U: ab\r\n\r\n`),
  chunked('trailer value', hole => `0\r\nT: a${hole}b\r\n\r\n`),
  { name: 'between messages', kind: 'request', make: hole => `GET / HTTP/1.1\r\nHost: a\r\n\r\n${hole}${NEXT}` },
  response('status code', hole => `HTTP/1.1 20${hole} OK`),
  response('after the status code', hole => `HTTP/1.1 200${hole}`),
  response('reason phrase', hole => `HTTP/1.1 200 O${hole}K`),
  response('response version', hole => `HTTP/1.${hole} 200 OK`),
  response('response field value', () => 'HTTP/1.1 200 OK', hole => `X: a${hole}b\r\nContent-Length: 0\r\n`),
  response('response chunk extension', () => 'HTTP/1.1 200 OK', () => 'Transfer-Encoding: chunked\r\n', hole => `1;a="${hole}"\r\nx\r\n0\r\n\r\n`)
]
