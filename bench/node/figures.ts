/**
 * Node mode's figures: per hop, the median of the rounds and its ratio to the sidecar pair on the same hop and mode
 * (measured in the same rounds, interleaved); per ladder step, the node proxy's memory and what each app adds to it.
 * The targets (issue point 6): 50 apps in at most 150 MB of resident memory, and per-request figures within 10 % of a
 * sidecar pair's.
 */
import { median } from '../proxy/stats'
import type { HopInfo, HopRound } from './hops'
import type { ClassPerApp } from './heap-classes'
import type { MemorySample } from './memory'

export interface HopResult extends HopInfo { readonly rounds: readonly HopRound[] }

export interface HopFigure {
  readonly label: string
  readonly unit: string
  readonly better: 'higher' | 'lower'
  readonly digits: number
  /** The figure in one round. */
  readonly round: (round: HopRound) => number
  /** The median of the rounds. */
  readonly value: (result: HopResult) => number
}

function hopFigure (label: string, unit: string, better: HopFigure['better'], digits: number, round: HopFigure['round']): HopFigure {
  return { label, unit, better, digits, round, value: result => median(result.rounds.map(round)) }
}

export const HOP_FIGURES = {
  keepAliveRps: hopFigure('keep-alive', 'requests/s', 'higher', 0, r => r.keepAlive.requestsPerSecond),
  pacedP99: hopFigure('p99 at a fixed rate', 'ms', 'lower', 2, r => r.paced.p99Ms),
  cpuPer10k: hopFigure('CPU per 10,000 keep-alive requests', 's', 'lower', 2, r => r.keepAliveCpuSeconds / r.keepAlive.requests * 10_000)
} as const satisfies Record<string, HopFigure>

/** The sidecar pair's result on the same hop and mode as `result`. */
export function sidecarPairOf (result: HopInfo, all: readonly HopResult[]): HopResult | undefined {
  return all.find(r => r.carrier === 'sidecar pair' && r.hop === result.hop && r.mode === result.mode)
}

/** `result`'s figure over the sidecar pair's on the same hop and mode; undefined when there is none. */
export function ratioToSidecars (fig: HopFigure, result: HopResult, all: readonly HopResult[]): number | undefined {
  const pair = sidecarPairOf(result, all)
  const reference = pair === undefined ? 0 : fig.value(pair)
  return reference === 0 ? undefined : fig.value(result) / reference
}

/**
 * `result`'s figure over the sidecar pair's in each round: the two ran one after the other, so a slow spell of the
 * shared machine that lasts a while hits both; the spread of these says how far the medians' ratio can be trusted.
 */
export function roundRatios (fig: HopFigure, result: HopResult, all: readonly HopResult[]): number[] {
  const pair = sidecarPairOf(result, all)
  if (pair === undefined) return []
  return result.rounds.flatMap((round, i) => {
    const reference = pair.rounds[i] === undefined ? 0 : fig.round(pair.rounds[i])
    return reference === 0 ? [] : [fig.round(round) / reference]
  })
}

/** Within 10 %: the better direction never fails it, the worse one by at most a tenth. */
export const PER_REQUEST_TOLERANCE = 0.1
export function withinTolerance (fig: HopFigure, ratio: number): boolean {
  return fig.better === 'higher' ? ratio >= 1 - PER_REQUEST_TOLERANCE : ratio <= 1 + PER_REQUEST_TOLERANCE
}

/** One size of the ladder: the node proxy serving `apps` app namespaces. */
export interface LadderStep {
  readonly apps: number
  /** Once every app is served and a few seconds have passed, before any load. */
  readonly idle: MemorySample
  /** VmHWM after the loads between two of its apps; undefined with one app (no hop between two of its apps). */
  readonly peakRssMb: number | undefined
  /** Keep-alive requests/s between two of its apps in HTTP mode, and its CPU seconds per 10,000 of them: does serving more apps slow a hop? */
  readonly keepAliveRps: number | undefined
  readonly keepAliveCpuPer10k: number | undefined
}

export const RSS_TARGET = { apps: 50, mb: 150 } as const

export interface PerApp {
  readonly apps: number
  /** (RSS(N) − RSS(1)) / (N − 1): what one more app adds; undefined at N = 1 or without a step of one app. */
  readonly marginalMb: number | undefined
  /** RSS(N) / N: the node proxy's memory shared out among its apps. */
  readonly averageMb: number | undefined
}

/** Per-app memory at each step, from `pick` (idle RSS, peak RSS, heap …) of every step. */
export function perApp (steps: readonly LadderStep[], pick: (step: LadderStep) => number | undefined): PerApp[] {
  const one = steps.find(step => step.apps === 1)
  const base = one === undefined ? undefined : pick(one)
  return steps.map(step => {
    const value = pick(step)
    const marginalMb = value === undefined || base === undefined || step.apps === 1 ? undefined : (value - base) / (step.apps - 1)
    return { apps: step.apps, marginalMb, averageMb: value === undefined ? undefined : value / step.apps }
  })
}

/**
 * What `apps` sidecars would hold, one per app, from one sidecar's sample: each its private memory, the pages of the
 * program (shared by every Node process on the host) once.
 */
export function sidecarsMb (apps: number, sidecar: Pick<MemorySample, 'rssMb' | 'privateMb'>): number {
  return apps * sidecar.privateMb + (sidecar.rssMb - sidecar.privateMb)
}

/** The heap's growth per app by class, between the ladder's two largest sizes (heap-classes.ts). */
export interface HeapGrowth { readonly fromApps: number, readonly toApps: number, readonly classes: readonly ClassPerApp[] }
