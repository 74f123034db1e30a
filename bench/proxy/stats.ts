/**
 * The benchmark's order statistics: the median of rounds, and nearest-rank percentiles of latencies (the value
 * below which p % of the samples lie, always one of the samples: no interpolation that would invent a latency).
 */

export function median (values: readonly number[]): number {
  if (values.length === 0) throw new Error('the median of no values')
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** Nearest rank: the ⌈p/100 × n⌉-th smallest of `sorted` (ascending). */
export function percentile (sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new Error('a percentile of no values')
  if (!(p > 0 && p <= 100)) throw new Error(`percentile ${p} is not in (0, 100]`)
  return sorted[Math.ceil((p / 100) * sorted.length) - 1]
}

export interface LatencySummary { readonly count: number, readonly p50Ms: number, readonly p99Ms: number, readonly maxMs: number }

export function summarize (latenciesMs: readonly number[]): LatencySummary {
  const sorted = Float64Array.from(latenciesMs).sort()
  const values = Array.from(sorted)
  return { count: values.length, p50Ms: percentile(values, 50), p99Ms: percentile(values, 99), maxMs: values[values.length - 1] }
}
