/**
 * The generator's source of choices: a seeded PRNG (bench/seeded-random.ts), so that every generated case is made
 * again, byte for byte, from its seed and its index.
 */
import { seededRandom } from '../../../bench/seeded-random'

export class Random {
  readonly #next: () => number

  constructor (seed: number) {
    this.#next = seededRandom(seed)
  }

  float (): number {
    return this.#next()
  }

  /** An integer in [0, n). */
  int (n: number): number {
    return Math.floor(this.#next() * n)
  }

  /** An integer in [low, high]. */
  between (low: number, high: number): number {
    return low + this.int(high - low + 1)
  }

  chance (p: number): boolean {
    return this.#next() < p
  }

  pick<T> (items: readonly T[]): T {
    return items[this.int(items.length)]
  }

  /** One of `entries`, each as likely as its weight. */
  weighted<T> (entries: ReadonlyArray<readonly [T, number]>): T {
    let total = 0
    for (const [, weight] of entries) total += weight
    let roll = this.#next() * total
    for (const [value, weight] of entries) {
      roll -= weight
      if (roll < 0) return value
    }
    return entries[entries.length - 1][0]
  }

  /** `length` characters drawn from `alphabet`. */
  string (length: number, alphabet: string): string {
    const codes = new Array<number>(length)
    for (let i = 0; i < length; i++) codes[i] = alphabet.charCodeAt(this.int(alphabet.length))
    return String.fromCharCode(...codes)
  }

  /** `text` in one of its spellings: as written, lower case, upper case. */
  spelling (text: string): string {
    return this.weighted([[text, 6], [text.toLowerCase(), 3], [text.toUpperCase(), 1]])
  }
}

/** The seed of case `index` of a run with `seed`: neighbouring indexes get unrelated streams. */
export function caseSeed (seed: number, index: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35)
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d)
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b)
  return (h ^ (h >>> 16)) >>> 0
}
