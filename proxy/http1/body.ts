/**
 * Where an HTTP/1.1 body ends in a byte stream, without copying it: the bytes pass through untouched, in the
 * framing they came in, and only chunk-size lines and trailers are read. One reader per message.
 */
import type { Framing } from './head'

/** A chunk-size line or trailer line longer than this is refused (no real peer needs more). */
const MAX_LINE = 4096

export class BodyProblem extends Error {}

type ChunkState = 'size' | 'data' | 'data-end' | 'trailer'

export class BodyReader {
  #remaining: number
  readonly #chunked: boolean
  readonly #untilClose: boolean
  #state: ChunkState = 'size'
  #line = ''
  #done: boolean

  constructor (framing: Framing) {
    this.#chunked = framing.kind === 'chunked'
    this.#untilClose = framing.kind === 'close'
    this.#remaining = framing.kind === 'length' ? framing.length : 0
    this.#done = framing.kind === 'none' || (framing.kind === 'length' && framing.length === 0)
  }

  /** Whether the whole body has been seen (a close-delimited body never is: it ends with the connection). */
  get done (): boolean {
    return this.#done
  }

  /** How many bytes of `buffer` from `offset` belong to the body; throws BodyProblem on a malformed chunked body. */
  consume (buffer: Buffer, offset: number): number {
    if (this.#done) return 0
    if (this.#untilClose) return buffer.length - offset
    if (!this.#chunked) {
      const taken = Math.min(this.#remaining, buffer.length - offset)
      this.#remaining -= taken
      this.#done = this.#remaining === 0
      return taken
    }
    let at = offset
    while (at < buffer.length && !this.#done) at = this.#chunkStep(buffer, at)
    return at - offset
  }

  #chunkStep (buffer: Buffer, at: number): number {
    if (this.#state === 'data') {
      const taken = Math.min(this.#remaining, buffer.length - at)
      this.#remaining -= taken
      if (this.#remaining === 0) this.#state = 'data-end'
      return at + taken
    }
    const lineEnd = buffer.indexOf(10, at) // LF
    const end = lineEnd === -1 ? buffer.length : lineEnd + 1
    this.#line += buffer.toString('latin1', at, end)
    if (this.#line.length > MAX_LINE) throw new BodyProblem('a chunk-size or trailer line is too long')
    if (lineEnd !== -1) this.#endOfLine()
    return end
  }

  #endOfLine (): void {
    if (!this.#line.endsWith('\r\n')) throw new BodyProblem('a chunked body line must end with CRLF')
    const line = this.#line.slice(0, -2)
    this.#line = ''
    if (this.#state === 'data-end') {
      if (line !== '') throw new BodyProblem('chunk data is longer than its size')
      this.#state = 'size'
    } else if (this.#state === 'trailer') {
      if (line === '') this.#done = true
    } else {
      const size = /^([0-9a-fA-F]{1,12})[ \t]*(;.*)?$/.exec(line)
      if (size === null) throw new BodyProblem(`malformed chunk size ${JSON.stringify(line.slice(0, 40))}`)
      this.#remaining = parseInt(size[1], 16)
      this.#state = this.#remaining === 0 ? 'trailer' : 'data'
    }
  }
}
