/**
 * The sidecar's reading of an HTTP/1.1 byte stream, in the shape the llhttp oracle gives (llhttp-oracle.ts): the
 * product's ByteQueue finds each head, parseRequestHead/parseResponseHead read it and BodyReader delimits its body,
 * as HttpConnection (requests) and Exchange (responses) apply them: pipelined messages one after another; stop at
 * the first refusal, after a message that closes the connection, and after an upgrade, a CONNECT or a 101 (what
 * follows is another protocol). An upgrade request with a body is refused, as the sidecar refuses one it would
 * forward; 1xx responses are read and the final response after them. The bytes can arrive in pieces (`cuts`).
 */
import { BodyProblem, BodyReader } from '../../proxy/http1/body'
import type { BodySink } from '../../proxy/http1/body'
import { BAD_LINE_END, ByteQueue, NO_HEAD_YET } from '../../proxy/http1/byte-queue'
import type { HeaderLine } from '../../proxy/http1/fields'
import { DEFAULT_HEAD_LIMITS } from '../../proxy/http1/limits'
import type { HeadLimits } from '../../proxy/http1/limits'
import { parseRequestHead } from '../../proxy/http1/request-head'
import type { RequestHead } from '../../proxy/http1/request-head'
import { parseResponseHead } from '../../proxy/http1/response-head'
import type { ResponseHead } from '../../proxy/http1/response-head'
import type { FieldPair, StreamInput, StreamMessage, StreamOutcome, StreamResult } from './http1-stream-result'
import { methodOf } from './http1-stream-result'

export interface SidecarReadOptions {
  /** Offsets where the stream is cut into the pieces it arrives in. */
  readonly cuts?: readonly number[]
  readonly limits?: HeadLimits
}

/** The messages the sidecar reads from `input`, where each ended, and how the stream ends for it. */
export function readWithSidecar (input: StreamInput, options: SidecarReadOptions = {}): StreamResult {
  const reader = new SidecarStream(input, options.limits ?? DEFAULT_HEAD_LIMITS)
  const bytes = input.bytes
  let start = 0
  for (const end of [...(options.cuts ?? []), bytes.length].sort((a, b) => a - b)) {
    if (end <= start || end > bytes.length) continue
    if (!reader.push(bytes.subarray(start, end))) break
    start = end
  }
  return reader.finish()
}

type Head = RequestHead | ResponseHead

class SidecarStream {
  readonly #input: StreamInput
  readonly #limits: HeadLimits
  readonly #queue = new ByteQueue()
  /** Bytes of the stream handled so far. */
  #offset = 0
  readonly #messages: StreamMessage[] = []
  #head: Head | undefined
  #body: BodyReader | undefined
  #data: Buffer[] = []
  #trailers: readonly HeaderLine[] = []
  #finals = 0
  #outcome: StreamOutcome | undefined
  readonly #sink: BodySink = {
    data: piece => { this.#data.push(piece) },
    end: trailers => { this.#trailers = trailers }
  }

  constructor (input: StreamInput, limits: HeadLimits) {
    this.#input = input
    this.#limits = limits
  }

  /** Takes the next piece of the stream; false once the reader has stopped. */
  push (piece: Buffer): boolean {
    this.#queue.append(piece)
    let more = true
    while (more && this.#outcome === undefined) more = this.#body === undefined ? this.#readHead() : this.#readBody()
    return this.#outcome === undefined
  }

  /** The end of the stream: a body delimited by the close ends here. */
  finish (): StreamResult {
    if (this.#outcome === undefined) {
      if (this.#head?.framing.kind === 'close') this.#complete(this.#head, false, true)
      else if (this.#body !== undefined || this.#queue.length > 0) this.#outcome = { kind: 'incomplete' }
      else this.#outcome = { kind: 'end' }
    }
    return { messages: this.#messages, outcome: this.#outcome ?? { kind: 'end' } }
  }

  /** Reads the next head if it is all there; true to go on. */
  #readHead (): boolean {
    const queue = this.#queue
    const length = queue.headLength()
    if (length === NO_HEAD_YET) {
      if (queue.length > this.#limits.maxHeadBytes) this.#refuse(`the head is larger than ${this.#limits.maxHeadBytes} bytes`)
      return false
    }
    if (length === BAD_LINE_END) return this.#refuse('400 a line of the head does not end in CRLF')
    const head = this.#input.kind === 'request'
      ? parseRequestHead(queue.view(), 0, length, this.#limits)
      : parseResponseHead(queue.view(), 0, length, methodOf(this.#input, this.#finals), this.#limits)
    if ('problem' in head) return this.#refuse(`${head.status} ${head.problem}`)
    queue.consume(length)
    this.#offset += length
    if ('method' in head) {
      if (head.upgrade.length > 0 && (head.framing.kind === 'chunked' || (head.framing.kind === 'length' && head.framing.length > 0))) return this.#refuse('400 an upgrade request may not have a body')
      if (head.method === 'CONNECT' || head.upgrade.length > 0) return this.#complete(head, true, false)
    } else if (head.status < 200) {
      return this.#complete(head, head.status === 101, false) // a 1xx: the final response follows
    }
    this.#head = head
    this.#body = new BodyReader(head.framing, this.#limits.maxHeaders)
    return true
  }

  /** Reads what there is of the body; true when it ended and the next message may follow. */
  #readBody (): boolean {
    const body = this.#body as BodyReader
    let taken: number
    try {
      taken = body.read(this.#queue.view(), 0, this.#sink)
    } catch (err) {
      if (!(err instanceof BodyProblem)) throw err
      return this.#refuse(`${this.#input.kind === 'request' ? 400 : 502} ${err.message}`)
    }
    this.#queue.consume(taken)
    this.#offset += taken
    return body.done && this.#complete(this.#head as Head, false, false)
  }

  /** The message with `head` (and the body read) ends here; true when the stream goes on as HTTP. */
  #complete (head: Head, upgrade: boolean, atClose: boolean): boolean {
    const keepAlive = !head.close && !atClose
    const fields = {
      version: `1.${head.minor}`,
      headers: pairs(head.headers),
      body: Buffer.concat(this.#data),
      trailers: pairs(this.#trailers),
      upgrade,
      keepAlive: 'method' in head || head.status >= 200 ? keepAlive : true, // the sidecar reads on after any 1xx
      end: this.#offset
    }
    this.#messages.push('method' in head ? { method: head.method, target: head.target, ...fields } : { status: head.status, reason: head.reason, ...fields })
    if (!('method' in head) && head.status >= 200) this.#finals++
    this.#head = this.#body = undefined
    this.#data = []
    this.#trailers = []
    if (upgrade) this.#outcome = { kind: 'upgrade' }
    else if (!fields.keepAlive) this.#outcome = { kind: 'closed' }
    return this.#outcome === undefined
  }

  #refuse (reason: string): false {
    this.#outcome = { kind: 'refused', reason }
    return false
  }
}

function pairs (fields: readonly HeaderLine[]): FieldPair[] {
  return fields.map(field => [field.name, field.value])
}
