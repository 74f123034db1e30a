/**
 * Bytes received and not yet handled, kept so that reading a head is linear in the bytes received however they
 * are split: appends grow the store geometrically (no copy of everything per chunk), and the search for the end of
 * a head resumes where the last one stopped (no rescan from the start per chunk). A 64 KiB head sent a byte per
 * TLS record costs 64 Ki small appends and one pass, not 2 Gi byte copies.
 */
const EMPTY = Buffer.alloc(0)

export const NO_HEAD_YET = -1
export const BAD_LINE_END = -2

export class ByteQueue {
  #store: Buffer = EMPTY
  #start = 0
  #end = 0
  /** Bytes from #start already searched for the end of a head. */
  #searched = 0
  /** #store is a chunk taken by reference, not ours to write into. */
  #borrowed = false
  /** Bytes examined by every search so far: what shows the search linear in the bytes received. */
  #bytesSearched = 0

  get bytesSearched (): number {
    return this.#bytesSearched
  }

  get length (): number {
    return this.#end - this.#start
  }

  /** The queued bytes (a view: valid until the next append or consume). */
  view (): Buffer {
    return this.#store.subarray(this.#start, this.#end)
  }

  append (chunk: Buffer): void {
    if (this.length === 0) { // the usual case: nothing waits, take the chunk as it is
      this.#store = chunk
      this.#start = 0
      this.#end = chunk.length
      this.#borrowed = true
      return
    }
    if (this.#borrowed || this.#end + chunk.length > this.#store.length) {
      const grown = Buffer.allocUnsafe(Math.max(2 * this.length, this.length + chunk.length, 4096))
      this.#store.copy(grown, 0, this.#start, this.#end)
      this.#end = this.length
      this.#start = 0
      this.#store = grown
      this.#borrowed = false
    }
    chunk.copy(this.#store, this.#end)
    this.#end += chunk.length
  }

  /** Drops the first `count` bytes (handled). Views taken before stay valid: bytes are never written over. */
  consume (count: number): void {
    this.#start += count
    this.#searched = Math.max(0, this.#searched - count)
    if (this.#start >= this.#end) this.clear()
  }

  /** Takes everything queued: the bytes, then an empty queue. */
  take (): Buffer {
    const bytes = this.view()
    this.clear()
    return bytes
  }

  clear (): void {
    this.#store = EMPTY
    this.#start = this.#end = this.#searched = 0
    this.#borrowed = false
  }

  /**
   * The length of the head at the front (through its blank line), NO_HEAD_YET while its end has not arrived, or
   * BAD_LINE_END as soon as a line of it ends other than in CRLF — an LF without CR, or a CR without LF (RFC 9112
   * §2.2): refused at once, not waited on, as llhttp refuses them. One search per line; a CR inside a complete head
   * is left to the head's parser, which refuses it as a control character.
   */
  headLength (): number {
    const bytes = this.#store.subarray(0, this.#end)
    const from = this.#start + this.#searched
    let at = from
    for (;;) {
      const lf = bytes.indexOf(10, at)
      if (lf === -1) {
        // Waiting: a CR of the new bytes already followed by something other than LF will not become a line end.
        for (let cr = bytes.indexOf(13, Math.max(this.#start, from - 1)); cr !== -1 && cr < this.#end - 1; cr = bytes.indexOf(13, cr + 1)) {
          if (bytes[cr + 1] !== 10) return BAD_LINE_END
        }
        this.#bytesSearched += this.#end - at
        this.#searched = this.length
        return NO_HEAD_YET
      }
      this.#bytesSearched += lf + 1 - at
      if (lf === this.#start || bytes[lf - 1] !== 13) return BAD_LINE_END
      if (lf - this.#start >= 3 && bytes[lf - 2] === 10 && bytes[lf - 3] === 13) {
        this.#searched = 0
        return lf + 1 - this.#start
      }
      at = lf + 1
    }
  }
}
