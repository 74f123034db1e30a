/** Node mode's benchmark results with round numbers, for its figure and report tests (not a test itself). */
import type { HopResult, LadderStep } from '../../bench/node/figures'
import type { Carrier, Hop, HopRound, Mode } from '../../bench/node/hops'
import type { MemorySample } from '../../bench/node/memory'

const SECONDS = 5

/** Three rounds at 0.9×, 1.1× and 1× the given medians, so the median of each figure is the given one. */
export function hopResult (hop: Hop, carrier: Carrier, mode: Mode, m: { rps: number, p99: number, cpu10k: number }): HopResult {
  const round = (f: number): HopRound => {
    const requests = m.rps * f * SECONDS
    return {
      keepAlive: { requests, requestsPerSecond: m.rps * f, p50Ms: 1, p99Ms: 9, bytesPerSecond: 0, errors: 0 },
      keepAliveCpuSeconds: m.cpu10k * f * requests / 10_000,
      paced: { sent: 5000, errors: 0, count: 5000, p50Ms: 1, p99Ms: m.p99 * f, maxMs: 20, sendLagP99Ms: 0.5 }
    }
  }
  return { hop, carrier, mode, rounds: [round(0.9), round(1.1), round(1)] }
}

export const HOPS: readonly HopResult[] = [
  hopResult('same device', 'node proxy', 'http', { rps: 4000, p99: 3, cpu10k: 1 }),
  hopResult('same device', 'sidecar pair', 'http', { rps: 5000, p99: 2.5, cpu10k: 1.25 }),
  hopResult('two devices', 'node proxy', 'http', { rps: 4600, p99: 2.6, cpu10k: 1.2 }),
  hopResult('two devices', 'sidecar pair', 'http', { rps: 5000, p99: 2.5, cpu10k: 1.2 }),
  hopResult('same device', 'node proxy', 'tcp', { rps: 8000, p99: 2, cpu10k: 0.5 }),
  hopResult('same device', 'sidecar pair', 'tcp', { rps: 8000, p99: 2, cpu10k: 0.5 })
]

export function memory (rssMb: number, parts: Partial<MemorySample> = {}): MemorySample {
  return { rssMb, peakRssMb: rssMb, privateMb: rssMb - 45, heapTotalMb: 20, heapUsedMb: 18, externalMb: 2, nativeMb: rssMb - 67, handles: 5, ...parts }
}

/** 80 MB with one app, 1 MB more for each further app; peaks 30 MB above idle from two apps on. */
export const STEPS: readonly LadderStep[] = [1, 10, 50].map(apps => ({
  apps,
  idle: memory(79 + apps, { heapTotalMb: 20 + apps * 0.5 }),
  peakRssMb: apps === 1 ? undefined : 109 + apps,
  keepAliveRps: apps === 1 ? undefined : 4000,
  keepAliveCpuPer10k: apps === 1 ? undefined : 1.5
}))
