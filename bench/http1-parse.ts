/**
 * Micro-benchmark: reading one HTTP/1.1 message, the sidecar's parser against llhttp (Node's own, through the
 * HTTPParser binding Node's server and client use) on the same bytes: a typical GET head, a response with a 1 KiB
 * body, the same body chunked, and a 64 KiB body. The sidecar's side finds the head (ByteQueue), parses it (parseRequestHead or
 * parseResponseHead) and reads the body (BodyReader); llhttp's side is one execute() per message on a kept-alive
 * parser whose callbacks take the head, the body pieces and the end, as Node's do. Rounds alternate between the two,
 * so the machine's load falls on both alike; the median of each is reported.
 */
import { BodyReader } from '../proxy/http1/body'
import type { BodySink } from '../proxy/http1/body'
import { ByteQueue } from '../proxy/http1/byte-queue'
import { DEFAULT_HEAD_LIMITS } from '../proxy/http1/limits'
import { parseRequestHead } from '../proxy/http1/request-head'
import { parseResponseHead } from '../proxy/http1/response-head'
import { measure } from './measure'
import { HTTPParser } from './node-http-parser'
import type { NodeParser } from './node-http-parser'

type Kind = 'request' | 'response'

const GET = [
  'GET /api/v1/items/42?view=full HTTP/1.1', 'Host: app-b.example:8080', 'User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36',
  'Accept: application/json, text/plain, */*', 'Accept-Encoding: gzip, deflate, br', 'Accept-Language: en-US,en;q=0.9',
  'Cache-Control: no-cache', 'Cookie: session=7f3a9c2e41b84d0f; theme=dark', 'X-Request-Id: 3f2c7a1e-9b4d-4e8a-a6f1-2d5c8e9b0a17',
  'Traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
].join('\r\n') + '\r\n\r\n'
const RESPONSE_HEAD = ['HTTP/1.1 200 OK', 'Date: Wed, 02 Dec 2026 05:00:00 GMT', 'Server: app-b', 'Content-Type: application/json', 'Cache-Control: max-age=60',
  'ETag: "5f3a-9c2e41b8"', 'Vary: Accept-Encoding'].join('\r\n')
const KIB = 'x'.repeat(1024)

const MESSAGES: ReadonlyArray<readonly [name: string, kind: Kind, text: string]> = [
  ['GET request, 10 field lines, no body', 'request', GET],
  ['200 response, 7 field lines, 1 KiB body (Content-Length)', 'response', `${RESPONSE_HEAD}\r\nContent-Length: 1024\r\n\r\n${KIB}`],
  ['200 response, 7 field lines, 1 KiB body in 4 chunks', 'response', `${RESPONSE_HEAD}\r\nTransfer-Encoding: chunked\r\n\r\n${'100\r\n'.concat(KIB.slice(0, 256), '\r\n').repeat(4)}0\r\n\r\n`],
  // The data path: the sidecar hands a body on in the slices it arrived in, llhttp copies it into each on_body Buffer.
  ['200 response, 7 field lines, 64 KiB body (Content-Length)', 'response', `${RESPONSE_HEAD}\r\nContent-Length: 65536\r\n\r\n${KIB.repeat(64)}`]
]

/** A body sink that counts, so the data is looked at as the sidecar's writer would. */
class Counter implements BodySink {
  bytes = 0
  data (piece: Buffer): void {
    this.bytes += piece.length
  }

  end (): void {}
}

/** The sidecar's reading on one connection (its queue kept), as HttpConnection and Exchange do; `read` returns what it read. */
function sidecarReader (kind: Kind): (bytes: Buffer) => number {
  const queue = new ByteQueue()
  return bytes => {
    queue.append(bytes)
    const length = queue.headLength()
    const head = kind === 'request' ? parseRequestHead(queue.view(), 0, length, DEFAULT_HEAD_LIMITS) : parseResponseHead(queue.view(), 0, length, 'GET', DEFAULT_HEAD_LIMITS)
    if ('problem' in head) throw new Error(head.problem)
    queue.consume(length)
    const counter = new Counter()
    const reader = new BodyReader(head.framing, DEFAULT_HEAD_LIMITS.maxHeaders)
    queue.consume(reader.read(queue.view(), 0, counter))
    if (!reader.done || queue.length > 0) throw new Error('the message did not end where it should')
    return counter.bytes + head.headers.length
  }
}

/** A kept-alive llhttp parser for `kind`, with callbacks like Node's; `read` parses one message and returns what it read. */
function llhttpReader (kind: Kind): (bytes: Buffer) => number {
  const parser: NodeParser = new HTTPParser()
  parser.initialize(kind === 'request' ? HTTPParser.REQUEST : HTTPParser.RESPONSE, {}, 0, HTTPParser.kLenientNone)
  let fields = 0
  let body = 0
  let complete = 0
  parser[HTTPParser.kOnHeadersComplete] = (_major: number, _minor: number, headers: string[] | undefined) => {
    fields = (headers?.length ?? 0) / 2
    return 0
  }
  parser[HTTPParser.kOnBody] = (piece: Buffer) => { body += piece.length }
  parser[HTTPParser.kOnMessageComplete] = () => { complete++ }
  return bytes => {
    body = 0
    const before = complete
    const parsed = parser.execute(bytes)
    if (typeof parsed !== 'number' || complete !== before + 1) throw new Error(`llhttp did not read the message: ${String(parsed)}`)
    return body + fields
  }
}

const ROUNDS = 7
const ROUND_MS = 300

/** One line per reader and message: messages/s, ns/message, and the sidecar's time over llhttp's. */
export function benchHttp1Parse (): string[] {
  const lines: string[] = []
  for (const [name, kind, text] of MESSAGES) {
    const bytes = Buffer.from(text, 'latin1')
    const [sidecar, llhttp] = [sidecarReader(kind), llhttpReader(kind)]
    if (sidecar(bytes) !== llhttp(bytes)) throw new Error(`${name}: the two readers read different messages`)
    const ours: number[] = []
    const theirs: number[] = []
    for (let round = 0; round < ROUNDS; round++) {
      ours.push(measure(name, () => sidecar(bytes), { rounds: 1, roundMs: ROUND_MS }).perSecond)
      theirs.push(measure(name, () => llhttp(bytes), { rounds: 1, roundMs: ROUND_MS }).perSecond)
    }
    const [mine, other] = [median(ours), median(theirs)]
    lines.push(rateLine(`http1 parse, sidecar: ${name}`, mine), rateLine(`http1 parse, llhttp:  ${name}`, other),
      `${''.padEnd(8)}sidecar/llhttp time per message: ${(other / mine).toFixed(2)}`)
  }
  return lines
}

function median (values: readonly number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]
}

function rateLine (name: string, perSecond: number): string {
  return `${name.padEnd(80)} ${Math.round(perSecond).toLocaleString('en-US').padStart(10)} msg/s ${Math.round(1e9 / perSecond).toLocaleString('en-US').padStart(7)} ns/msg`
}
