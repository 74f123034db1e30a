/**
 * Shapes of the lines of a head (RFC 9112 §2–§5): obs-fold, bare LF and bare CR, whitespace before the colon,
 * controls in values, two Host lines, `#` and other bytes RFC 3986 forbids in a target, odd request and status
 * lines and methods, upgrade and Connection spellings, empty lines before a message, and many field lines.
 */
import { field, insertField, plainField } from './draft'
import { BOTH, chunkBody, lengthBody, placeNear, REQUEST, RESPONSE, shapes } from './shape'
import type { Shape } from './shape'

const CONTROLS = ['\x00', '\x01', '\x08', '\x0b', '\x0c', '\x0e', '\x1b', '\x1f', '\x7f', '\r', '\n']
/** Bytes RFC 3986 does not allow in a path or query, and malformed escapes. */
const TARGET_FORBIDDEN = [' ', '"', '<', '>', '\\', '^', '`', '{', '|', '}', '[', ']', '#', '%', '%g0', '%0', '\x7f', '\x80', '\xa0', '\xff', ...CONTROLS]

function body (r: Parameters<Shape['make']>[0], m: Parameters<typeof lengthBody>[1]): void {
  if (r.chance(0.5)) lengthBody(r, m)
  else chunkBody(r, m)
}

export const LINE_SHAPES: Shape[] = [
  ...shapes('obs-fold', BOTH, (r, m) => {
    body(r, m)
    const fold = `${r.pick([' ', '\t', '  '])}${r.pick(['chunked', 'folded', '5', 'x'])}`
    const at = r.int(m.fields.length + 1)
    m.fields.splice(at, 0, ...(r.chance(0.5) ? [fold] : [field(r, r.pick(['X-Folded', 'Transfer-Encoding', 'Content-Length']), r.pick(['', 'a', 'gzip'])), fold]))
  }),
  ...shapes('bare-lf', BOTH, (r, m) => {
    body(r, m)
    if (r.chance(0.4)) m.eol = r.pick(['\n', '\r\r\n', '\n\r'])
    else insertField(r, m, `${plainField(r)}\n${r.pick(['Transfer-Encoding: chunked', 'Content-Length: 0', 'X-Next: 1', ''])}`)
  }),
  ...shapes('bare-cr', BOTH, (r, m) => {
    body(r, m)
    if (r.chance(0.3)) m.eol = '\r'
    else insertField(r, m, `${plainField(r)}\r${r.pick(['Transfer-Encoding: chunked', 'Content-Length: 0', 'X-Next: 1', ''])}`)
  }),
  ...shapes('whitespace-before-colon', BOTH, (r, m) => {
    const name = r.pick(['Transfer-Encoding', 'Content-Length', 'Host', 'X-Custom'])
    if (name === 'Transfer-Encoding') chunkBody(r, m)
    else lengthBody(r, m)
    const line = `${name}${r.pick([' ', '\t', '  ', '\x0b', '\xa0'])}: ${name === 'Transfer-Encoding' ? 'chunked' : name === 'Content-Length' ? m.body.length : 'x'}`
    m.fields = m.fields.filter(existing => !existing.toLowerCase().startsWith(name.toLowerCase()))
    insertField(r, m, line)
  }),
  ...shapes('control-in-value', BOTH, (r, m) => {
    body(r, m)
    const control = r.pick(CONTROLS.slice(0, 9))
    insertField(r, m, field(r, r.pick(['X-Control', 'Host', 'Connection', 'Accept']), r.pick([`a${control}b`, `${control}a`, `a${control}`, `close${control}`])))
  }),
  ...shapes('two-host-lines', REQUEST, (r, m) => {
    insertField(r, m, field(r, r.spelling('Host'), r.pick(['evil.example', 'app-b', ''])))
  }),
  ...shapes('host-malformed', REQUEST, (r, m) => {
    m.fields = m.fields.filter(line => !/^host/i.test(line))
    insertField(r, m, field(r, 'Host', r.pick(['a b', 'a,b', 'a/b', 'a@b', 'a:b:c', '[::1', 'a#b', 'a\xa0', 'a:80x', '%zz', 'a_b.example:08'])))
  }),
  ...shapes('fragment-in-target', REQUEST, (r, m) => {
    m.start = `${r.pick(['GET', 'POST'])} ${r.pick(['/a#b', '/#', '/public/x#/../../admin', '/a?b#c', 'http://h/#x', '/a%23b'])} HTTP/1.1`
  }),
  ...shapes('forbidden-byte-in-target', REQUEST, (r, m) => {
    const path = `/${r.pick(['a', 'api/items', ''])}`
    const at = r.int(path.length + 1)
    m.start = `GET ${path.slice(0, at)}${r.pick(TARGET_FORBIDDEN)}${path.slice(at)}${r.chance(0.3) ? '?q=1' : ''} HTTP/1.1`
  }),
  ...shapes('request-line', REQUEST, (r, m) => {
    m.start = r.pick(['GET  / HTTP/1.1', 'GET / HTTP/1.1 ', 'GET\t/ HTTP/1.1', ' GET / HTTP/1.1', 'GET / HTTP/1.2', 'GET / HTTP/2.0', 'GET / HTTP/0.9', 'GET / http/1.1',
      'GET / HTTP/01.1', 'GET / HTTP/1.10', 'GET /', 'GET / HTTP/1.1\x00', 'GET  HTTP/1.1', 'GET * HTTP/1.1', 'OPTIONS * HTTP/1.1', 'GET app-b:80 HTTP/1.1',
      'CONNECT /x HTTP/1.1', 'CONNECT app-b HTTP/1.1', 'GET ftp://app-b/ HTTP/1.1', 'GET http://user@app-b/ HTTP/1.1', 'GET http:/app-b/ HTTP/1.1'])
  }),
  ...shapes('method', REQUEST, (r, m) => {
    m.start = `${r.pick(['get', 'Get', 'PRI', 'DESCRIBE', 'SETUP', 'GETT', 'GE', 'QUERY', 'M-SEARCH', 'SOURCE', 'PURGE', 'ACL', 'G\x00T', 'POST\x0b'])} / HTTP/1.1`
  }),
  ...shapes('status-line', RESPONSE, (r, m) => {
    lengthBody(r, m)
    m.start = r.pick(['HTTP/1.1 200', 'HTTP/1.1 200 ', 'HTTP/1.1  200 OK', 'HTTP/1.1 2000 OK', 'HTTP/1.1 20 OK', 'HTTP/1.1 099 X', 'HTTP/1.1 000 X', 'HTTP/1.1 200 O\x00K',
      'HTTP/1.1 200 O\x7fK', 'HTTP/1.1 200 O\tK', 'HTTP/1.1 200 \xe9t\xe9', 'HTTP/1.2 200 OK', 'HTTP/2 200', 'HTTP/2.0 200 OK', 'http/1.1 200 OK', 'HTTP/1.1 200\tOK',
      'HTTP/1.1 999 X', 'HTTP/1.1 600 X', 'HTTP/1.1 +20 X', 'HTTP/1.0 200 OK', 'ICE/1.0 200 OK', 'RTSP/1.0 200 OK', 'HTTP/1.1 200 OK\r'])
  }),
  ...shapes('upgrade', REQUEST, (r, m) => {
    m.start = 'GET /ws HTTP/1.1'
    m.fields.push(field(r, 'Connection', r.pick(['upgrade', 'Upgrade, close', 'keep-alive', 'upgrade, keep-alive', 'x-upgrade', 'upgrade\x0b'])))
    m.fields.push(field(r, 'Upgrade', r.pick(['websocket', '', ',', ' , ', 'websocket, h2c', 'h2c', 'WebSocket', 'web socket', 'websocket\xa0'])))
    if (r.chance(0.2)) lengthBody(r, m)
    m.tail = 'not http\r\n\r\n'
  }),
  ...shapes('connection-options', BOTH, (r, m) => {
    body(r, m)
    insertField(r, m, field(r, r.weighted([['Connection', 3], ['Proxy-Connection', 1]]), r.pick(['close, keep-alive', 'keep-alive, close', 'closed', 'close\x0b', ',close', 'close,', 'clos', 'close;', 'CLOSE',
      'keep-alive\xa0', 'keepalive', 'x close', 'close x', '"close"', 'close, close', ''])))
    if (r.chance(0.3)) insertField(r, m, field(r, r.pick(['Connection', 'Proxy-Connection']), r.pick(['close', 'keep-alive', 'upgrade'])))
  }),
  ...shapes('connection-in-http-1.0', BOTH, (r, m) => {
    lengthBody(r, m)
    m.start = m.start.replace('HTTP/1.1', 'HTTP/1.0')
    insertField(r, m, field(r, 'Connection', r.pick(['keep-alive', 'Keep-Alive, close', 'close', 'keep-alive\x0b', 'keepalive', 'upgrade'])))
  }),
  ...shapes('empty-lines-before', BOTH, (r, m) => {
    m.start = `${r.pick(['\r\n', '\r\n\r\n', '\n', ' \r\n'])}${m.start}`
  }),
  ...shapes('many-field-lines', BOTH, (r, m) => {
    body(r, m)
    for (let count = r.pick([31, 32, 33, 64, r.between(90, 110), r.between(100, 250)]); count > 0; count--) m.fields.push(plainField(r))
    placeNear(m, /^x-last/i, 'X-Last: 1', false)
  })
]
