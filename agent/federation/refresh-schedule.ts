/**
 * When to fetch a federated bundle again, and whether a fetched one replaces the held one: pure functions, the
 * caller owns the timers. The schedule is SPIRE's (pkg/server/bundle/client/manager.go): four attempts per refresh
 * hint, so one failed fetch does not let a bundle go stale; freshness is SPIFFE Federation §4.2's.
 */
import type { SpiffeBundle } from '../../spiffe/spiffe-bundle'

/** SPIRE's MinimumRefreshHint: no endpoint makes us poll more often than this. */
export const MINIMUM_REFRESH_MS = 60_000
/** SPIRE's defaultRefreshInterval, for a bundle without a refresh hint. */
export const DEFAULT_REFRESH_MS = 5 * 60_000
const ATTEMPTS_PER_REFRESH_HINT = 4
/** The first retry after a failed fetch; each further failure doubles it. */
export const FIRST_RETRY_MS = 5_000
/** Node's timers hold at most 2^31-1 ms (a longer one fires at once): a huge hint must not become a busy loop. */
const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * The delay before the next fetch after a successful one: the bundle's refresh hint ÷ 4, 5 minutes without a hint
 * (or a hint of 0), never below `floorMs`; without any bundle yet, `floorMs` (a bootstrap should be noticed soon).
 */
export function nextRefreshMs (bundle: SpiffeBundle | undefined, floorMs = MINIMUM_REFRESH_MS): number {
  if (bundle === undefined) return floorMs
  const hint = bundle.refreshHintSeconds
  const every = hint === undefined || hint === 0 ? DEFAULT_REFRESH_MS : hint * 1000 / ATTEMPTS_PER_REFRESH_HINT
  return Math.min(MAX_TIMER_MS, Math.max(floorMs, Math.round(every)))
}

/**
 * The delay after `consecutiveFailures` failed fetches in a row (1 for the first): 5 s, 10 s, 20 s … and never
 * later than `normalMs`, the delay a success would give. `random` (0 ≤ r < 1, e.g. Math.random) spreads the delay
 * ±10% so that agents which lost an endpoint together do not come back together; without it the delay is exact.
 * No failure (0) is the normal schedule.
 */
export function retryDelayMs (consecutiveFailures: number, normalMs: number, random?: () => number): number {
  if (!(consecutiveFailures >= 1)) return normalMs
  const doublings = Math.min(Math.floor(consecutiveFailures) - 1, 30)
  // Jitter applies at the cap too (downwards only), so agents that failed together stay apart.
  const base = Math.min(normalMs, FIRST_RETRY_MS * 2 ** doublings)
  const jittered = random === undefined ? base : base * (0.9 + 0.2 * random())
  return Math.round(Math.min(normalMs, jittered))
}

export type Freshness = 'newer' | 'same' | 'older'

/**
 * SPIFFE Federation §4.2: how a fetched bundle compares with the one held. With spiffe_sequence on both, the
 * sequence decides; otherwise the most recent fetch wins, unless its authorities are the ones held ('same': the
 * caller need not store or announce anything).
 */
export function compareFreshness (fetched: SpiffeBundle, held: SpiffeBundle | undefined): Freshness {
  if (held === undefined) return 'newer'
  if (fetched.sequence !== undefined && held.sequence !== undefined) {
    return fetched.sequence > held.sequence ? 'newer' : fetched.sequence === held.sequence ? 'same' : 'older'
  }
  return authoritiesKey(fetched) === authoritiesKey(held) ? 'same' : 'newer'
}

/** The X.509 authorities and JWT keys, in an order and form that do not depend on how the document was written. */
function authoritiesKey (bundle: SpiffeBundle): string {
  const x509 = bundle.x509.authorities.map(cert => cert.raw.toString('base64')).sort()
  // JwtBundle keeps only a key's public members, in a fixed order: its JSON text is canonical.
  const jwt = [...bundle.jwt.keys].map(entry => JSON.stringify(entry)).sort()
  return JSON.stringify({ x509, jwt })
}
