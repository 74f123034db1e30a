/**
 * A per-address request rate: a token bucket for each caller address (`perSecond` tokens a second, up to `burst`),
 * the table of buckets bounded (full buckets are forgotten first: an address that has waited long enough is new
 * again). Not shared: each listener holds its own.
 */
export interface RequestRateLimits {
  readonly perSecond: number
  readonly burst: number
  /** Addresses tracked at once; past it, the idle ones are dropped, then the oldest. */
  readonly maxAddresses: number
}

interface Bucket { tokens: number, at: number }

export class RequestRate {
  readonly #limits: RequestRateLimits
  readonly #buckets = new Map<string, Bucket>()
  readonly #clock: () => number

  constructor (limits: RequestRateLimits, clock: () => number = Date.now) {
    this.#limits = limits
    this.#clock = clock
  }

  /** Takes a token for `address`: whether the request may go on. */
  take (address: string): boolean {
    const now = this.#clock()
    const bucket = this.#refilled(this.#buckets.get(address), now)
    if (!this.#buckets.has(address)) this.#makeRoom(now)
    this.#buckets.set(address, bucket)
    if (bucket.tokens < 1) return false
    bucket.tokens -= 1
    return true
  }

  #refilled (bucket: Bucket | undefined, now: number): Bucket {
    if (bucket === undefined) return { tokens: this.#limits.burst, at: now }
    return { tokens: Math.min(this.#limits.burst, bucket.tokens + (now - bucket.at) * this.#limits.perSecond / 1000), at: now }
  }

  #makeRoom (now: number): void {
    if (this.#buckets.size < this.#limits.maxAddresses) return
    for (const [address, bucket] of this.#buckets) {
      if (this.#refilled(bucket, now).tokens >= this.#limits.burst) this.#buckets.delete(address)
    }
    // Still full: the oldest first (a Map iterates in insertion order).
    for (const address of this.#buckets.keys()) {
      if (this.#buckets.size < this.#limits.maxAddresses) break
      this.#buckets.delete(address)
    }
  }
}
