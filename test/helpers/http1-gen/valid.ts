/**
 * Valid HTTP/1.1 and HTTP/1.0 messages of every shape the sidecar accepts (RFC 9110, RFC 9112): the methods llhttp
 * knows, every request-target form, field lines with the whitespace senders use, bodies by Content-Length and by
 * chunks (with extensions and trailers), 1xx, 204, 304 and HEAD responses, bodies delimited by the close,
 * keep-alive and close, upgrades and CONNECT; and streams of them, pipelined.
 */
import { METHODS, STATUS_CODES } from 'node:http'
import type { MessageKind } from '../http1-stream-result'
import { bodyData, draft, field, plainField, setChunked, setLength, TCHAR } from './draft'
import type { Draft } from './draft'
import type { Random } from './random'

const METHOD_WEIGHTS: ReadonlyArray<readonly [string, number]> = [
  ['GET', 40], ['POST', 20], ['PUT', 6], ['DELETE', 5], ['HEAD', 5], ['OPTIONS', 4], ['PATCH', 4], ['CONNECT', 2],
  ...METHODS.filter(method => !['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'CONNECT'].includes(method)).map(method => [method, 0.5] as const)
]
const UNRESERVED = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~'
const PCHAR = `${UNRESERVED}!$&'()*+,;=:@`
const HOSTS = ['app-b', 'app-b.example', 'app-b.example:8080', '127.0.0.1', '127.0.0.1:8443', '[::1]:8080', 'localhost:80', 'x.y.z']

export function host (r: Random): string {
  return r.pick(HOSTS)
}

function path (r: Random): string {
  let text = ''
  for (let segments = r.between(0, 4); segments > 0; segments--) {
    text += `/${r.string(r.between(0, 8), PCHAR)}${r.chance(0.1) ? `%${r.string(2, '0123456789abcdefABCDEF')}` : ''}`
  }
  text ||= '/'
  return r.chance(0.3) ? `${text}?${r.string(r.between(0, 12), `${PCHAR}/?`)}` : text
}

/** A request-target of the form the method takes (RFC 9112 §3.2). */
export function target (r: Random, method: string): string {
  if (method === 'CONNECT') return `${r.pick(['app-b', 'app-b.example', '127.0.0.1', '[::1]'])}:${r.between(1, 65535)}`
  if (method === 'OPTIONS' && r.chance(0.3)) return '*'
  if (r.chance(0.15)) return `${r.pick(['http', 'https', 'HTTP'])}://${host(r)}${r.chance(0.9) ? path(r) : ''}`
  return path(r)
}

function fields (r: Random, message: Draft, count: number): void {
  for (let i = 0; i < count; i++) message.fields.push(plainField(r))
}

/** Connection options that keep (`keep`) or close the connection for `minor`, as senders write them. */
function connection (r: Random, message: Draft, minor: number, keep: boolean): void {
  if (keep && minor === 0) message.fields.push(field(r, r.spelling('Connection'), r.spelling('keep-alive')))
  else if (!keep && minor === 1) message.fields.push(field(r, r.spelling('Connection'), r.pick(['close', 'Close', 'close, te', 'x-opt, close'])))
  else if (keep && r.chance(0.2)) message.fields.push(field(r, r.spelling('Connection'), r.pick(['keep-alive', 'Keep-Alive', 'x-opt'])))
  message.last = !keep
}

export function validRequest (r: Random): Draft {
  const minor = r.chance(0.85) ? 1 : 0
  const method = r.weighted(METHOD_WEIGHTS)
  const message = draft('request', `${method} ${target(r, method)} HTTP/1.${minor}`, method)
  fields(r, message, r.weighted([[0, 2], [1, 3], [3, 3], [8, 1]]))
  if (minor === 1 || r.chance(0.5)) message.fields.splice(r.int(message.fields.length + 1), 0, field(r, r.spelling('Host'), host(r)))
  if (method === 'CONNECT') {
    message.last = true
    message.tail = 'tunnelled bytes\r\n\r\nGET / HTTP/1.1\r\n\r\n'
    return message
  }
  if (r.chance(0.05)) {
    message.fields.push(field(r, r.spelling('Connection'), r.pick(['upgrade', 'Upgrade', 'keep-alive, Upgrade'])), field(r, 'Upgrade', r.pick(['websocket', 'h2c', 'websocket, foo/2'])))
    message.last = true
    message.tail = '\x81\x05hello GET / HTTP/1.1\r\n\r\n'
    return message
  }
  connection(r, message, minor, r.chance(0.9))
  if (['POST', 'PUT', 'PATCH'].includes(method) || r.chance(0.1)) {
    const data = bodyData(r, r.weighted([[0, 1], [r.between(1, 16), 4], [r.between(17, 200), 2]]))
    if (minor === 1 && r.chance(0.4)) setChunked(r, message, data)
    else setLength(r, message, data)
  }
  return message
}

const FINAL_STATUSES: ReadonlyArray<readonly [number, number]> = [[200, 40], [201, 4], [204, 5], [206, 2], [301, 2], [302, 2], [304, 5], [400, 3], [404, 4], [500, 3], [503, 2]]

function statusLine (r: Random, minor: number, status: number): string {
  const reason = r.weighted([[STATUS_CODES[status] ?? 'Whatever', 8], ['', 1], ['OK', 1], [`${r.string(4, TCHAR)} \t${r.string(4, TCHAR)}\x80`, 1]])
  return `HTTP/1.${minor} ${status}${reason === '' && r.chance(0.5) ? '' : ` ${reason}`}`
}

/** An interim response (RFC 9110 §15.2) before a final one. */
export function informational (r: Random, method: string): Draft {
  const message = draft('response', statusLine(r, 1, r.pick([100, 102, 103])), method)
  fields(r, message, r.int(2))
  return message
}

/** A final response to `method`, framed as its status and the method allow. */
export function validResponse (r: Random, method: string): Draft {
  const minor = r.chance(0.9) ? 1 : 0
  const status = method === 'GET' && minor === 1 && r.chance(0.03) ? 101 : r.weighted(FINAL_STATUSES)
  const message = draft('response', statusLine(r, minor, status), method)
  fields(r, message, r.weighted([[0, 2], [1, 3], [3, 3], [8, 1]]))
  if (status === 101) {
    message.fields.push(field(r, 'Connection', 'Upgrade'), field(r, 'Upgrade', 'websocket'))
    message.last = true
    message.tail = '\x81\x02hi HTTP/1.1 200 OK\r\n\r\n'
    return message
  }
  connection(r, message, minor, r.chance(0.9))
  const data = bodyData(r, r.weighted([[0, 1], [r.between(1, 16), 4], [r.between(17, 300), 2]]))
  if (method === 'HEAD' || status === 204 || status === 304) {
    // No body: a length or chunked coding says what a GET would have had (RFC 9110 §9.3.2, §15.4.5).
    if (r.chance(0.4) && status !== 204) setLength(r, message, '', String(data.length))
    else if (r.chance(0.2) && minor === 1 && method === 'HEAD') setChunked(r, message, '')
    message.body = ''
  } else if (minor === 1 && r.chance(0.35)) {
    setChunked(r, message, data)
  } else if (r.chance(0.85)) {
    setLength(r, message, data)
  } else {
    message.body = data // delimited by the close
    message.last = true
  }
  return message
}

/** A valid stream of 1 to 4 messages (fewer when one must be the last): requests, or responses with the methods they answer. */
export function validStream (r: Random, kind: MessageKind): Draft[] {
  const messages: Draft[] = []
  for (let count = r.weighted([[1, 5], [2, 3], [3, 1], [4, 1]]); count > 0 && messages.at(-1)?.last !== true; count--) {
    if (kind === 'request') {
      messages.push(validRequest(r))
    } else {
      const method = r.weighted([['GET', 6], ['HEAD', 2], ['POST', 2]])
      if (r.chance(0.1)) messages.push(informational(r, method))
      messages.push(validResponse(r, method))
    }
  }
  return messages
}
