/**
 * The benchmark's figures: what was measured per path and round, each figure as the median of the rounds, and as
 * a ratio to haproxy's in the same mode (absolute numbers depend on the machine; only the comparison travels).
 * The tables (report.ts) and the chart (chart.ts) both read the figures from here.
 */
import type { ConnectionAudit } from './audit'
import type { PacedResult } from './paced'
import { median } from './stats'
import type { WrkResult } from './wrk'

export type Proxy = 'direct' | 'Chaperone' | 'haproxy' | 'nginx' | 'ghostunnel' | 'Node.js'

export interface PathInfo {
  readonly name: string
  readonly proxy: Proxy
  /** haproxy in the same mode is the reference for ratios; `undefined` (direct) has none. */
  readonly mode: 'tcp' | 'http' | undefined
}

/** One round of every load on one path. CPU seconds are the path's proxy processes' (undefined when direct). */
export interface RoundResult {
  readonly keepAlive: WrkResult
  readonly keepAliveCpuSeconds: number | undefined
  readonly newConnections: WrkResult
  readonly newConnectionCpuSeconds: number | undefined
  readonly body: WrkResult
  readonly paced: PacedResult
}

export interface PathResult extends PathInfo {
  readonly rounds: readonly RoundResult[]
  /** Resident set of each hop (client, server) in MB, once started and at its peak over the whole run; none when direct. */
  readonly idleRssMb: readonly number[]
  readonly peakRssMb: readonly number[]
  /** The private part of each hop's resident set (not the shared program pages) after the last round. */
  readonly privateRssMb: readonly number[]
  readonly audit: ConnectionAudit
}

export interface Figure {
  /** What it is, without the unit: the chart's panel title is `label, unit`. */
  readonly label: string
  readonly unit: string
  readonly better: 'higher' | 'lower'
  readonly digits: number
  readonly value: (path: PathResult) => number | undefined
}

const MiB = 2 ** 20

/** The median over rounds of `pick`; undefined when a round has no such figure. */
const medianOf = (pick: (round: RoundResult) => number | undefined) => (path: PathResult): number | undefined => {
  const values = path.rounds.map(pick)
  return values.every((v): v is number => v !== undefined) ? median(values) : undefined
}

const per10k = (cpuSeconds: number | undefined, count: number): number | undefined =>
  cpuSeconds === undefined || count === 0 ? undefined : cpuSeconds / count * 10_000

const figure = (label: string, unit: string, better: Figure['better'], digits: number, value: Figure['value']): Figure =>
  ({ label, unit, better, digits, value })

export const FIGURES = {
  keepAliveRps: figure('keep-alive', 'requests/s', 'higher', 0, medianOf(r => r.keepAlive.requestsPerSecond)),
  keepAliveP50: figure('keep-alive p50', 'ms', 'lower', 2, medianOf(r => r.keepAlive.p50Ms)),
  keepAliveP99: figure('keep-alive p99', 'ms', 'lower', 2, medianOf(r => r.keepAlive.p99Ms)),
  pacedP50: figure('p50 at 1,000 requests/s', 'ms', 'lower', 2, medianOf(r => r.paced.p50Ms)),
  pacedP99: figure('p99 at 1,000 requests/s', 'ms', 'lower', 2, medianOf(r => r.paced.p99Ms)),
  pacedSendLag: figure('paced client\'s own send lag, p99', 'ms', 'lower', 2, medianOf(r => r.paced.sendLagP99Ms)),
  pacedMax: figure('max at 1,000 requests/s', 'ms', 'lower', 1, medianOf(r => r.paced.maxMs)),
  newConnectionRate: figure('one request per connection', 'connections/s', 'higher', 0, medianOf(r => r.newConnections.requestsPerSecond)),
  newConnectionCpu: figure('CPU per 10,000 new connections', 's', 'lower', 2, medianOf(r => per10k(r.newConnectionCpuSeconds, r.newConnections.requests))),
  bodyThroughput: figure('1 MiB body', 'MiB/s', 'higher', 0, medianOf(r => r.body.bytesPerSecond / MiB)),
  cpuPer10k: figure('CPU per 10,000 keep-alive requests', 's', 'lower', 2, medianOf(r => per10k(r.keepAliveCpuSeconds, r.keepAlive.requests))),
  peakRss: figure('peak RSS, both hops', 'MB', 'lower', 1, path => path.peakRssMb.length === 0 ? undefined : path.peakRssMb.reduce((a, b) => a + b, 0))
} satisfies Record<string, Figure>

/** haproxy's path in the same mode; itself for a haproxy path; none for direct. */
export function referenceOf (path: PathInfo, all: readonly PathResult[]): PathResult | undefined {
  return path.mode === undefined ? undefined : all.find(p => p.proxy === 'haproxy' && p.mode === path.mode)
}

/** `path`'s figure divided by `ref`'s; undefined when either has none. */
export function ratioTo (fig: Figure, path: PathResult, ref: PathResult | undefined): number | undefined {
  const [value, refValue] = [fig.value(path), ref === undefined ? undefined : fig.value(ref)]
  return value === undefined || refValue === undefined || refValue === 0 ? undefined : value / refValue
}

/** The figure as a ratio to haproxy's in the same mode. */
export function ratio (fig: Figure, path: PathResult, all: readonly PathResult[]): number | undefined {
  return ratioTo(fig, path, referenceOf(path, all))
}

/** Errors of one load summed over the rounds. */
export const errorsOf = (path: PathResult, load: 'keepAlive' | 'newConnections' | 'body' | 'paced'): number =>
  path.rounds.reduce((sum, round) => sum + round[load].errors, 0)

export const formatNumber = (n: number | undefined, digits: number): string =>
  n === undefined ? '—' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })

export const formatRatio = (r: number | undefined): string => r === undefined ? '—' : `${r.toFixed(2)}×`
