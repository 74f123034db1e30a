/**
 * Writes a body's data to a socket in the framing the sidecar chose for it: as it is (Content-Length, or until
 * the close), or chunked with the sidecar's own chunk lines (extensions dropped) and trailer section (framing and
 * identity fields dropped). The message's head goes out with the first piece of its body, in one write: a write of
 * several buffers (writev) costs a sidecar more than copying a small head and body into one. Calls `blocked` when
 * the socket's buffer is full, so the sender can pause its source.
 */
import type { Socket } from 'node:net'
import type { BodySink } from './body'
import type { HeaderLine } from './fields'
import type { Framing } from './framing'
import { trailerBytes } from './serialize'

/** Pieces up to this size are copied into one buffer with what goes before them; larger ones are written apart. */
const COALESCE_BYTES = 64 * 1024
const CRLF = Buffer.from('\r\n', 'latin1')
const NOTHING: readonly Buffer[] = []

export class BodyWriter implements BodySink {
  readonly #socket: Socket
  readonly #chunked: boolean
  readonly #drop: (lower: string) => boolean
  readonly #blocked: () => void
  readonly #ended: () => void
  /** The head, until it goes out with the first piece of the body (or alone, on flush). */
  #head: Buffer | undefined

  /** `sent`: the framing the receiver was told; `drop`: trailer fields never forwarded; `ended`: after the last byte. */
  constructor (socket: Socket, sent: Framing, drop: (lower: string) => boolean, blocked: () => void, ended: () => void) {
    this.#socket = socket
    this.#chunked = sent.kind === 'chunked'
    this.#drop = drop
    this.#blocked = blocked
    this.#ended = ended
  }

  /** The message's head: sent with the body's first piece, or by flush(). */
  head (bytes: Buffer): void {
    this.#head = bytes
  }

  /** Sends the head if no piece of the body took it along. */
  flush (): void {
    if (this.#head !== undefined) this.#write(NOTHING)
  }

  data (piece: Buffer): void {
    if (piece.length === 0) return
    this.#write(this.#chunked ? [Buffer.from(`${piece.length.toString(16)}\r\n`, 'latin1'), piece, CRLF] : [piece])
  }

  end (trailers: readonly HeaderLine[]): void {
    this.#write(this.#chunked ? [trailerBytes(trailers, this.#drop)] : NOTHING)
    this.#ended()
  }

  /** The head if still due, then `parts`: one write when small, else one write per part (no writev). */
  #write (parts: readonly Buffer[]): void {
    const all = this.#head === undefined ? parts : [this.#head, ...parts]
    this.#head = undefined
    if (all.length === 0) return
    let size = 0
    for (const part of all) size += part.length
    let room = true
    if (all.length === 1 || size <= COALESCE_BYTES) room = this.#socket.write(all.length === 1 ? all[0] : Buffer.concat(all, size))
    else for (const part of all) room = this.#socket.write(part)
    if (!room) this.#blocked()
  }
}
