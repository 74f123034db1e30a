/**
 * Shapes of responses (RFC 9112 §6.3): bodies where none may be (HEAD, 1xx, 204, 304) with the bytes that a
 * parser reading them would take as the body, interim responses that close the connection or carry framing,
 * 101 without an upgrade, and codings that make a response run until the close.
 */
import { bodyData, draft, field, insertField, setLength } from './draft'
import type { Draft } from './draft'
import type { Random } from './random'
import { chunkBody, lengthBody, RESPONSE, shapes } from './shape'
import type { Shape } from './shape'

/** A status line, a length field for `data` and the data after the head, whatever the status allows. */
function withBodyBytes (r: Random, m: Draft, start: string, data = bodyData(r, r.between(1, 20))): void {
  m.start = start
  if (r.chance(0.7)) setLength(r, m, data)
  else chunkBody(r, m)
}

function interim (r: Random, status: number, fields: readonly string[]): Draft {
  const message = draft('response', `HTTP/1.1 ${status} ${r.pick(['Continue', 'Processing', 'Early Hints', 'X'])}`, 'GET')
  for (const line of fields) insertField(r, message, line)
  return message
}

export const RESPONSE_SHAPES: Shape[] = [
  ...shapes('head-response-with-body', RESPONSE, (r, m) => {
    m.method = 'HEAD'
    withBodyBytes(r, m, 'HTTP/1.1 200 OK', 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')
  }),
  ...shapes('no-body-status-with-body', RESPONSE, (r, m) => {
    withBodyBytes(r, m, `HTTP/1.1 ${r.pick([204, 304])} ${r.pick(['No Content', 'Not Modified'])}`, r.pick(['HTTP/1.1 200 OK\r\n\r\n', bodyData(r, r.between(1, 20))]))
  }),
  ...shapes('interim-with-body', RESPONSE, (r, m) => {
    const first = interim(r, r.pick([100, 102, 103, 150, 199]), [])
    withBodyBytes(r, first, first.start, r.pick(['HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', bodyData(r, r.between(1, 20))]))
    lengthBody(r, m)
    return [first, m]
  }),
  ...shapes('interim-closes', RESPONSE, (r, m) => {
    lengthBody(r, m)
    return [interim(r, r.pick([100, 103]), [field(r, 'Connection', r.pick(['close', 'Close', 'keep-alive, close']))]), m]
  }),
  ...shapes('interim-in-http-1.0', RESPONSE, (r, m) => {
    lengthBody(r, m)
    const first = interim(r, 100, r.chance(0.5) ? [field(r, 'Connection', 'keep-alive')] : [])
    first.start = first.start.replace('HTTP/1.1', 'HTTP/1.0')
    return [first, m]
  }),
  ...shapes('switching-protocols-unasked', RESPONSE, (r, m) => {
    m.start = 'HTTP/1.1 101 Switching Protocols'
    if (r.chance(0.5)) m.fields.push(field(r, 'Upgrade', r.pick(['websocket', '', 'h2c'])))
    if (r.chance(0.5)) m.fields.push(field(r, 'Connection', r.pick(['upgrade', 'close', 'keep-alive'])))
    if (r.chance(0.3)) lengthBody(r, m)
    m.tail = r.pick(['HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', '\x81\x02hi'])
  }),
  ...shapes('coding-until-close', RESPONSE, (r, m) => {
    chunkBody(r, m, {}, r.pick(['gzip', 'identity', 'chunked, gzip', 'gzip, chunked']))
    m.body += 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'
  }),
  ...shapes('status-with-length-and-eof', RESPONSE, (r, m) => {
    m.start = `HTTP/1.${r.pick([0, 1])} ${r.pick([200, 404, 500])} X`
    m.body = bodyData(r, r.between(0, 30))
    m.last = true
  })
]
