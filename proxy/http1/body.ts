/**
 * Where an HTTP/1.1 body ends in a byte stream, and what its data is. A Content-Length or close-delimited body is
 * handed on in the slices it arrived in, never copied; a chunked body is read strictly (RFC 9112 §7.1: hex size,
 * extensions of tokens and quoted strings, CRLF after each chunk) and only its data handed on, so the sidecar writes
 * the chunk framing itself; its trailer section is read as field lines and given to the sink at the end.
 */
import type { HeaderLine } from './fields'
import { parseFieldLines } from './fields'
import type { Framing } from './framing'
import { MAX_BODY_LINE } from './limits'

export class BodyProblem extends Error {}

/** Where a body's data goes: each piece of data, then the end with the trailer fields (chunked only). */
export interface BodySink {
  data: (piece: Buffer) => void
  end: (trailers: readonly HeaderLine[]) => void
}

type ChunkState = 'size' | 'data' | 'data-end' | 'trailer'

const CHUNK_SIZE = /^([0-9A-Fa-f]{1,12})((?:;[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:=(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+|"(?:[\t\x20\x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t\x20-\x7e\x80-\xff])*"))?)*)$/
const NO_TRAILERS: readonly HeaderLine[] = Object.freeze([])

/**
 * Fields that frame a message or govern its connection may not be trailers (RFC 9110 §6.5.1), and llhttp applies
 * them there as in a head: a trailer Content-Length or Transfer-Encoding is an error, `Connection: close` (or
 * Proxy-Connection) closes the connection after the message. Refused, so the sidecar never reads on where llhttp stops.
 */
const NOT_TRAILERS: ReadonlySet<string> = new Set(['content-length', 'transfer-encoding', 'connection', 'proxy-connection', 'upgrade'])

export class BodyReader {
  readonly #framing: Framing['kind']
  readonly #maxTrailers: number
  #remaining: number
  #state: ChunkState = 'size'
  #line = ''
  #trailerLines: string[] = []
  #done: boolean

  constructor (framing: Framing, maxTrailers: number) {
    this.#framing = framing.kind
    this.#maxTrailers = maxTrailers
    this.#remaining = framing.kind === 'length' ? framing.length : 0
    this.#done = framing.kind === 'none' || (framing.kind === 'length' && framing.length === 0)
  }

  /** Whether the whole body has been read (a close-delimited body never is: it ends with the connection). */
  get done (): boolean {
    return this.#done
  }

  /** Reads the body's part of `buffer` from `offset` into `sink`; returns how many bytes were taken; BodyProblem when malformed. */
  read (buffer: Buffer, offset: number, sink: BodySink): number {
    if (this.#done) return 0
    if (this.#framing === 'close') {
      if (offset < buffer.length) sink.data(offset === 0 ? buffer : buffer.subarray(offset))
      return buffer.length - offset
    }
    if (this.#framing === 'length') {
      const taken = Math.min(this.#remaining, buffer.length - offset)
      if (taken > 0) sink.data(taken === buffer.length ? buffer : buffer.subarray(offset, offset + taken))
      this.#remaining -= taken
      if (this.#remaining === 0) this.#finish(sink, NO_TRAILERS)
      return taken
    }
    let at = offset
    while (at < buffer.length && !this.#done) at = this.#chunkStep(buffer, at, sink)
    return at - offset
  }

  #finish (sink: BodySink, trailers: readonly HeaderLine[]): void {
    this.#done = true
    sink.end(trailers)
  }

  #chunkStep (buffer: Buffer, at: number, sink: BodySink): number {
    if (this.#state === 'data') {
      const taken = Math.min(this.#remaining, buffer.length - at)
      sink.data(buffer.subarray(at, at + taken))
      this.#remaining -= taken
      if (this.#remaining === 0) this.#state = 'data-end'
      return at + taken
    }
    const lineEnd = buffer.indexOf(10, at) // LF
    const end = lineEnd === -1 ? buffer.length : lineEnd + 1
    this.#line += buffer.toString('latin1', at, end)
    if (this.#line.length > MAX_BODY_LINE + 2) throw new BodyProblem('a chunk-size or trailer line is too long')
    if (lineEnd !== -1) this.#endOfLine(sink)
    return end
  }

  #endOfLine (sink: BodySink): void {
    const text = this.#line
    this.#line = ''
    if (!text.endsWith('\r\n') || text.indexOf('\r') !== text.length - 2) throw new BodyProblem('a chunked body line must end with CRLF, with no other CR or LF')
    const line = text.slice(0, -2)
    if (this.#state === 'data-end') {
      if (line !== '') throw new BodyProblem('chunk data is longer than its size')
      this.#state = 'size'
    } else if (this.#state === 'trailer') {
      this.#trailerLine(line, sink)
    } else {
      const size = CHUNK_SIZE.exec(line)
      if (size === null) throw new BodyProblem(`malformed chunk size line ${JSON.stringify(line.slice(0, 40))}`)
      this.#remaining = parseInt(size[1], 16)
      this.#state = this.#remaining === 0 ? 'trailer' : 'data'
    }
  }

  #trailerLine (line: string, sink: BodySink): void {
    if (line !== '') {
      if (this.#trailerLines.length >= this.#maxTrailers) throw new BodyProblem(`more than ${this.#maxTrailers} trailer lines`)
      this.#trailerLines.push(line)
      return
    }
    const trailers = parseFieldLines(this.#trailerLines, 0)
    if (typeof trailers === 'string') throw new BodyProblem(`trailer section: ${trailers}`)
    const framing = trailers.find(field => NOT_TRAILERS.has(field.lower))
    if (framing !== undefined) throw new BodyProblem(`trailer section: ${framing.name} may not be a trailer field`)
    this.#trailerLines = []
    this.#finish(sink, trailers)
  }
}
