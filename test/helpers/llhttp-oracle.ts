/**
 * Node's own llhttp as an oracle: how a Node server reads a stream of requests, and a Node client a stream of
 * responses, in strict mode (no lenient flags, as Node runs by default). Reached through `_http_common`'s
 * HTTPParser, driven with the callbacks and return values lib/_http_common.js, _http_server.js and _http_client.js
 * give it: a request that llhttp flags as an upgrade (or CONNECT) skips its body and ends the HTTP stream (a server
 * with an `upgrade` listener); a response skips its body after HEAD, for a 1xx other than 101 and for 304, and a
 * 101 ends the stream.
 *
 * llhttp does not say where in a buffer a message ended, so the stream is fed in pieces: a message that completes
 * while a one-byte piece is parsed ends just past that byte. `hints` (offsets where messages are expected to end)
 * place those one-byte pieces; a message that completes in a longer piece is located by parsing the stream again
 * with that piece cut in two, until it completes in a piece of one byte. Hints make it fast, never different.
 */
import { HTTPParser, methodName } from '../../bench/node-http-parser'
import type { ParseError } from '../../bench/node-http-parser'
import type { FieldPair, StreamInput, StreamMessage, StreamOutcome, StreamResult } from './http1-stream-result'
import { methodOf } from './http1-stream-result'

/** Far above any head the tests send: llhttp's own header-size limit is not what is compared. */
const MAX_HEADER_SIZE = 1024 * 1024

export interface OracleOptions {
  /** Offsets where messages are expected to end (for speed only). */
  readonly hints?: readonly number[]
}

/** The messages llhttp reads from `input`, where each ended, and how the stream ends for it. */
export function readWithLlhttp (input: StreamInput, options: OracleOptions = {}): StreamResult {
  const length = input.bytes.length
  const cuts = new Set<number>()
  for (const hint of options.hints ?? []) {
    if (hint > 0 && hint <= length) cuts.add(hint - 1).add(hint)
  }
  for (;;) {
    const run = new LlhttpRun(input)
    const vague = run.parse([...cuts].sort((a, b) => a - b))
    if (vague === undefined) return run.result()
    cuts.add(Math.floor((vague.start + vague.end) / 2)) // the message ends in one half: halve again until a byte
  }
}

interface Draft {
  method?: string
  target?: string
  status?: number
  reason?: string
  version: string
  headers: FieldPair[]
  headersDone: boolean
  body: Buffer[]
  trailers: FieldPair[]
  upgrade: boolean
  keepAlive: boolean
}

interface Piece { readonly start: number, readonly end: number }

/** One pass of llhttp over the stream, cut into pieces. */
class LlhttpRun {
  readonly #input: StreamInput
  readonly #parser = new HTTPParser()
  readonly #messages: StreamMessage[] = []
  #draft: Draft | undefined
  #piece: Piece = { start: 0, end: 0 }
  /** A piece longer than a byte in which a message completed: where exactly is not known. */
  #vague: Piece | undefined
  #finals = 0
  #outcome: StreamOutcome = { kind: 'end' }

  constructor (input: StreamInput) {
    this.#input = input
    const parser = this.#parser
    parser.initialize(input.kind === 'request' ? HTTPParser.REQUEST : HTTPParser.RESPONSE, {}, MAX_HEADER_SIZE, HTTPParser.kLenientNone)
    parser[HTTPParser.kOnMessageBegin] = () => { this.#begin() }
    parser[HTTPParser.kOnHeaders] = (headers: string[], url: string) => { this.#fields(headers, url) }
    parser[HTTPParser.kOnHeadersComplete] = (major: number, minor: number, headers: string[] | undefined, method: number | undefined, url: string | undefined,
      status: number | undefined, reason: string | undefined, upgrade: boolean, keepAlive: boolean): number => {
      const draft = this.#current()
      if (headers !== undefined) this.#fields(headers, url ?? '')
      draft.headersDone = true
      draft.version = `${major}.${minor}`
      draft.keepAlive = keepAlive
      if (input.kind === 'request') draft.method = methodName(method ?? -1)
      else Object.assign(draft, { status, reason })
      return this.#skipBody(draft, upgrade)
    }
    parser[HTTPParser.kOnBody] = (piece: Buffer) => { this.#current().body.push(piece) }
    parser[HTTPParser.kOnMessageComplete] = () => { this.#complete() }
  }

  /** Parses the stream cut at `cuts`; returns a piece to cut finer, if a message completed somewhere inside it. */
  parse (cuts: readonly number[]): Piece | undefined {
    const bytes = this.#input.bytes
    try {
      let start = 0
      for (const end of [...cuts, bytes.length]) {
        if (end <= start) continue
        this.#piece = { start, end }
        const parsed = this.#parser.execute(bytes.subarray(start, end))
        if (typeof parsed !== 'number') return this.#failed(parsed)
        // llhttp pauses after a message that switches protocols; Node resumes it and says where it stopped, which
        // shows only when the pause is not at the end of the piece: the message itself says so.
        if (parsed < end - start || this.#messages.at(-1)?.upgrade === true) return this.#switched(start + parsed)
        start = end
      }
      this.#piece = { start: bytes.length, end: bytes.length } // a body that ends with the stream ends at its end
      const count = this.#messages.length
      const error = this.#parser.finish()
      if (error !== undefined) this.#outcome = { kind: 'incomplete' }
      else if (this.#messages.length > count) this.#outcome = { kind: 'closed' }
      return this.#vague
    } finally {
      this.#parser.close()
    }
  }

  result (): StreamResult {
    return { messages: this.#messages, outcome: this.#outcome }
  }

  #begin (): void {
    this.#draft = { version: '', headers: [], headersDone: false, body: [], trailers: [], upgrade: false, keepAlive: true }
  }

  #current (): Draft {
    if (this.#draft === undefined) this.#begin()
    return this.#draft as Draft
  }

  /** Field lines llhttp hands over in batches: the head's (with the target so far), or after the head, the trailers. */
  #fields (flat: readonly string[], url: string): void {
    const draft = this.#current()
    const into = draft.headersDone ? draft.trailers : draft.headers
    for (let i = 0; i + 1 < flat.length; i += 2) into.push([flat[i], flat[i + 1]])
    if (!draft.headersDone && this.#input.kind === 'request') draft.target = (draft.target ?? '') + url
  }

  /** What Node answers llhttp after a head: 0 read the body, 1 skip it, 2 skip it and end the stream (upgrade). */
  #skipBody (draft: Draft, upgrade: boolean): number {
    if (this.#input.kind === 'request') {
      draft.upgrade = upgrade
      return upgrade ? 2 : 0
    }
    const status = draft.status ?? 0
    const method = methodOf(this.#input, this.#finals)
    // llhttp pauses after every 101, with or without Upgrade (Node's client then reads no more HTTP).
    draft.upgrade = upgrade || status === 101 || method === 'CONNECT'
    if (draft.upgrade) return 2
    if (status < 200 || method === 'HEAD' || status === 304) return 1
    return 0
  }

  #complete (): void {
    const draft = this.#current()
    this.#draft = undefined
    const { start, end: pieceEnd } = this.#piece
    const end = pieceEnd - start <= 1 ? pieceEnd : undefined
    if (end === undefined) this.#vague ??= this.#piece
    if (this.#input.kind === 'response' && (draft.status ?? 0) >= 200) this.#finals++
    const { method, target, status, reason, version, headers, trailers, upgrade, keepAlive } = draft
    const message = { version, headers, body: Buffer.concat(draft.body), trailers, upgrade, keepAlive, end: end ?? -1 }
    this.#messages.push(this.#input.kind === 'request' ? { method, target, ...message } : { status, reason, ...message })
  }

  /** llhttp stopped after a message because the stream switches protocols: the message ended at `end`. */
  #switched (end: number): Piece | undefined {
    const last = this.#messages.at(-1)
    if (last !== undefined && last.end === -1) {
      this.#messages[this.#messages.length - 1] = { ...last, end }
      if (this.#messages.every(message => message.end !== -1)) this.#vague = undefined
    }
    this.#outcome = { kind: 'upgrade' }
    return this.#vague
  }

  #failed (error: ParseError): Piece | undefined {
    this.#outcome = error.code === 'HPE_CLOSED_CONNECTION' ? { kind: 'closed' } : { kind: 'refused', reason: `${error.code}: ${error.reason}` }
    return this.#vague
  }
}
