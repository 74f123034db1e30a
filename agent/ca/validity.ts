/**
 * Validity periods as certificates and tokens carry them: whole seconds (RFC 5280 §4.1.2.5, RFC 7519 §2 NumericDate),
 * with NotBefore backdated like SPIRE's.
 */

/** SPIRE backdates NotBefore 10 s so that peers whose clocks run a little slow accept fresh certificates. */
const BACKDATE_MS = 10_000

/** A time cut to whole seconds, so what is written is exactly what is read back and scheduled on. */
export function wholeSeconds (ms: number): Date {
  return new Date(Math.floor(ms / 1000) * 1000)
}

/** The NotBefore of a certificate issued at `now`. */
export function backdated (now: Date): Date {
  return wholeSeconds(now.getTime() - BACKDATE_MS)
}

/** `ttlSeconds` after `now`, but never after `limit` (the signer's own NotAfter), when there is one. */
export function expiryWithin (now: Date, ttlSeconds: number, limit?: Date): Date {
  return wholeSeconds(Math.min(now.getTime() + ttlSeconds * 1000, limit?.getTime() ?? Infinity))
}
