/**
 * Writes a body's data to a socket in the framing the sidecar chose for it: as it is (Content-Length, or until
 * the close), or chunked with the sidecar's own chunk lines (extensions dropped) and trailer section (framing and
 * identity fields dropped). Calls `blocked` when the socket's buffer is full, so the sender can pause its source.
 */
import type { Socket } from 'node:net'
import type { BodySink } from './body'
import type { HeaderLine } from './fields'
import type { Framing } from './framing'
import { chunkFraming, trailerBytes } from './serialize'

export class BodyWriter implements BodySink {
  readonly #socket: Socket
  readonly #chunked: boolean
  readonly #drop: (lower: string) => boolean
  readonly #blocked: () => void
  readonly #ended: () => void

  /** `sent`: the framing the receiver was told; `drop`: trailer fields never forwarded; `ended`: after the last byte. */
  constructor (socket: Socket, sent: Framing, drop: (lower: string) => boolean, blocked: () => void, ended: () => void) {
    this.#socket = socket
    this.#chunked = sent.kind === 'chunked'
    this.#drop = drop
    this.#blocked = blocked
    this.#ended = ended
  }

  data (piece: Buffer): void {
    if (piece.length === 0) return
    if (!this.#chunked) {
      if (!this.#socket.write(piece)) this.#blocked()
      return
    }
    const { size, end } = chunkFraming(piece.length)
    this.#socket.cork()
    this.#socket.write(size)
    this.#socket.write(piece)
    const room = this.#socket.write(end)
    this.#socket.uncork()
    if (!room) this.#blocked()
  }

  end (trailers: readonly HeaderLine[]): void {
    if (this.#chunked && !this.#socket.write(trailerBytes(trailers, this.#drop))) this.#blocked()
    this.#ended()
  }
}
