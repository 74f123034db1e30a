/** Benchmark results with round numbers, for the report and chart tests (not a test itself: tap runs *.test.ts). */
import type { PathResult, Proxy, RoundResult } from '../../bench/proxy/figures'
import type { WrkResult } from '../../bench/proxy/wrk'

export interface Medians {
  readonly rps: number
  readonly p50: number
  readonly p99: number
  readonly pacedP99: number
  readonly newConnections: number
  readonly mibps: number
  /** CPU seconds per 10,000 keep-alive requests; undefined for direct. */
  readonly cpu10k?: number
  readonly rss: number[]
}

const SECONDS = 5

const wrk = (rps: number, p50: number, p99: number, bytesPerSecond = 0): WrkResult =>
  ({ requests: rps * SECONDS, requestsPerSecond: rps, p50Ms: p50, p99Ms: p99, bytesPerSecond, errors: 0 })

/** Three rounds at 0.9×, 1.1× and 1× the given medians, so the median of each figure is the given one. */
export function pathResult (name: string, proxy: Proxy, mode: PathResult['mode'], m: Medians, audit = [1, 1, 1]): PathResult {
  const round = (f: number): RoundResult => {
    const keepAlive = wrk(m.rps * f, m.p50 * f, m.p99 * f)
    const newConnections = wrk(m.newConnections * f, 1, 2)
    return {
      keepAlive,
      keepAliveCpuSeconds: m.cpu10k === undefined ? undefined : m.cpu10k * f * keepAlive.requests / 10_000,
      newConnections,
      newConnectionCpuSeconds: m.cpu10k === undefined ? undefined : 10 * m.cpu10k * newConnections.requests / 10_000,
      body: wrk(m.mibps * f / 4, 5, 9, m.mibps * f * 2 ** 20),
      paced: { sent: 5000, errors: 0, count: 5000, p50Ms: m.pacedP99 / 4, p99Ms: m.pacedP99 * f, maxMs: m.pacedP99 * 2, sendLagP99Ms: 0.5 }
    }
  }
  return {
    name, proxy, mode, rounds: [round(0.9), round(1.1), round(1)], idleRssMb: m.rss.map(r => r / 2), peakRssMb: m.rss, privateRssMb: m.rss.map(r => r * 0.4),
    audit: { requests: 20, closesEveryResponse: true, perRequest: proxy === 'direct' ? [1] : audit }
  }
}

export const RESULTS: readonly PathResult[] = [
  pathResult('direct to nginx', 'direct', undefined, { rps: 100_000, p50: 0.2, p99: 0.5, pacedP99: 1, newConnections: 30_000, mibps: 1500, rss: [] }),
  pathResult('Chaperone sidecars, TCP', 'Chaperone', 'tcp', { rps: 20_000, p50: 2, p99: 20, pacedP99: 4, newConnections: 500, mibps: 250, cpu10k: 0.5, rss: [50, 48] }),
  pathResult('haproxy, tcp mode', 'haproxy', 'tcp', { rps: 40_000, p50: 1, p99: 10, pacedP99: 2, newConnections: 1000, mibps: 500, cpu10k: 0.25, rss: [20, 24] }),
  pathResult('ghostunnel, TCP', 'ghostunnel', 'tcp', { rps: 30_000, p50: 1.5, p99: 12, pacedP99: 2.5, newConnections: 400, mibps: 450, cpu10k: 0.3, rss: [12, 14] }),
  pathResult('Chaperone sidecars, HTTP', 'Chaperone', 'http', { rps: 5000, p50: 8, p99: 40, pacedP99: 10, newConnections: 250, mibps: 100, cpu10k: 2, rss: [70, 65] }, [1, 0, 0]),
  pathResult('haproxy, http mode', 'haproxy', 'http', { rps: 25_000, p50: 1.5, p99: 6, pacedP99: 2.5, newConnections: 500, mibps: 400, cpu10k: 0.4, rss: [20, 25] }),
  pathResult('nginx, http', 'nginx', 'http', { rps: 30_000, p50: 1.2, p99: 3, pacedP99: 5, newConnections: 15_000, mibps: 500, cpu10k: 0.3, rss: [20, 20] }, [1, 0, 0])
]
