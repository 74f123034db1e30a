/**
 * SHA-256 of executables for `unix:sha256:` selectors. Executables can be large and every connection is attested,
 * so a hash is computed by streaming (never the whole file in memory, never blocking the event loop) and kept in a
 * bounded cache keyed by the file's identity and change stamps.
 */
import { createHash } from 'node:crypto'
import { open } from 'node:fs/promises'
import type { Stats } from 'node:fs'

export const DEFAULT_MAX_HASH_BYTES = 256 * 1024 * 1024
const DEFAULT_CAPACITY = 256

export type HashResult = { readonly sha256: string } | { readonly tooLarge: number }

export class ExeHashCache {
  readonly #maxBytes: number
  readonly #capacity: number
  /** Insertion order doubles as recency: a hit is moved to the end, the first key is the least recently used. */
  readonly #hashes = new Map<string, Promise<string>>()
  #computed = 0

  constructor (options: { maxBytes?: number, capacity?: number } = {}) {
    this.#maxBytes = options.maxBytes ?? DEFAULT_MAX_HASH_BYTES
    this.#capacity = options.capacity ?? DEFAULT_CAPACITY
  }

  /** How many files were actually read and hashed (cache misses): for tests and metrics. */
  get computed (): number {
    return this.#computed
  }

  get size (): number {
    return this.#hashes.size
  }

  /**
   * Hashes the file at `path` (e.g. /proc/<pid>/exe, which opens the very inode the process runs even if renamed).
   * The file is opened once and stat'ed through that descriptor, so the key and the bytes hashed are the same file.
   */
  async hash (path: string): Promise<HashResult> {
    const file = await open(path, 'r')
    try {
      const stats = await file.stat()
      if (stats.size > this.#maxBytes) return { tooLarge: stats.size }
      const key = cacheKey(stats)
      let sha256 = this.#hashes.get(key)
      if (sha256 !== undefined) {
        this.#hashes.delete(key)
      } else {
        sha256 = this.#stream(file.createReadStream({ autoClose: false, highWaterMark: 1024 * 1024 }))
        // A failed read must not stay cached; concurrent callers share the one in-flight hash meanwhile.
        sha256.catch(() => this.#hashes.delete(key))
      }
      this.#hashes.set(key, sha256)
      if (this.#hashes.size > this.#capacity) this.#hashes.delete(this.#hashes.keys().next().value as string)
      return { sha256: await sha256 }
    } finally {
      await file.close()
    }
  }

  async #stream (chunks: AsyncIterable<Buffer>): Promise<string> {
    this.#computed++
    const hash = createHash('sha256')
    for await (const chunk of chunks) hash.update(chunk)
    return hash.digest('hex')
  }
}

/**
 * dev+ino name the file; size, mtime and ctime change when it is written. ctime is included because mtime can be
 * set back with utimes(2) by whoever may write the file, while ctime cannot be set by anyone but the kernel.
 */
function cacheKey (stats: Stats): string {
  return `${stats.dev}:${stats.ino}:${stats.size}:${stats.mtimeMs}:${stats.ctimeMs}`
}
