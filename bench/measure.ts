/**
 * A small, honest timing loop for micro-benchmarks: warm up, then several timed rounds, report the median rate.
 * One process, one core; results vary by machine, so compare ratios within one run rather than absolute numbers.
 */
import { performance } from 'node:perf_hooks'

export interface Rate {
  readonly name: string
  /** Median operations per second over the rounds. */
  readonly perSecond: number
  readonly rounds: readonly number[]
}

export interface MeasureOptions {
  readonly rounds?: number
  /** Minimum duration of one round, in milliseconds. */
  readonly roundMs?: number
}

/** Results are stored where the optimiser must assume they are read, so the measured work cannot be dropped. */
const sink: unknown[] = [undefined]

/** Calls `op(i)` repeatedly; `op` should return something so the work cannot be optimised away. */
export function measure (name: string, op: (i: number) => unknown, options: MeasureOptions = {}): Rate {
  const rounds = options.rounds ?? 5
  const roundMs = options.roundMs ?? 500
  for (let i = 0; i < 1000; i++) sink[0] = op(i)
  const rates: number[] = []
  for (let round = 0; round < rounds; round++) {
    let count = 0
    const start = performance.now()
    let elapsed = 0
    while (elapsed < roundMs) {
      for (let i = 0; i < 100; i++) sink[0] = op(count++)
      elapsed = performance.now() - start
    }
    rates.push(count / (elapsed / 1000))
  }
  const sorted = [...rates].sort((a, b) => a - b)
  return { name, perSecond: sorted[Math.floor(sorted.length / 2)], rounds: rates }
}

/** A fixed-width table line: name, median rate, and the spread of the rounds. */
export function formatRate (rate: Rate): string {
  const min = Math.min(...rate.rounds)
  const max = Math.max(...rate.rounds)
  const fmt = (n: number): string => Math.round(n).toLocaleString('en-US')
  return `${rate.name.padEnd(64)} ${fmt(rate.perSecond).padStart(12)} /s   (rounds ${fmt(min)} – ${fmt(max)})`
}
