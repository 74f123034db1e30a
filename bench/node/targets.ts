/**
 * Node mode's targets (issue point 6), checked against every run: fifty apps in at most 150 MB, and per-request
 * figures within 10 % of a sidecar pair on the same hop. Each row says what bounds the figure (bounds.ts, from the
 * profiles; what would move it follows the table).
 */
import { formatNumber, formatRatio } from '../proxy/figures'
import { HOP_FIGURES, RSS_TARGET, ratioToSidecars, roundRatios, withinTolerance } from './figures'
import type { HopFigure, HopResult, LadderStep } from './figures'
import type { Hop, Mode } from './hops'
import { BOUND } from './bounds'

interface Measured { readonly shown: string, readonly reached: boolean }

interface NodeTarget {
  readonly label: string
  readonly target: string
  readonly check: (steps: readonly LadderStep[], results: readonly HopResult[]) => Measured | undefined
  readonly bound: string
}

const rssTarget: NodeTarget = {
  label: `node proxy serving ${RSS_TARGET.apps} apps: RSS, peak under load (idle)`,
  target: `≤ ${RSS_TARGET.mb} MB`,
  check: steps => {
    const step = steps.find(s => s.apps === RSS_TARGET.apps)
    if (step === undefined) return undefined
    const worst = step.peakRssMb ?? step.idle.rssMb
    return { shown: `${formatNumber(step.peakRssMb, 1)} MB (${formatNumber(step.idle.rssMb, 1)} MB)`, reached: worst <= RSS_TARGET.mb }
  },
  bound: BOUND.memory
}

function perRequest (hop: Hop, mode: Mode, fig: HopFigure, bound: string): NodeTarget {
  const tolerance = fig.better === 'higher' ? '≥ 0.90×' : '≤ 1.10×'
  return {
    label: `${hop}, ${mode === 'http' ? 'HTTP' : 'TCP'}: ${fig.label}`,
    target: `${tolerance} sidecar pair`,
    check: (_steps, results) => {
      const node = results.find(r => r.carrier === 'node proxy' && r.hop === hop && r.mode === mode)
      const ratio = node === undefined ? undefined : ratioToSidecars(fig, node, results)
      if (node === undefined || ratio === undefined) return undefined
      const rounds = roundRatios(fig, node, results)
      const spread = rounds.length < 2 ? '' : ` (rounds ${formatRatio(Math.min(...rounds))}–${formatRatio(Math.max(...rounds))})`
      return { shown: `${formatRatio(ratio)}${spread}`, reached: withinTolerance(fig, ratio) }
    },
    bound
  }
}

export const NODE_TARGETS: readonly NodeTarget[] = [
  rssTarget,
  ...(['http', 'tcp'] as const).flatMap(mode => [
    perRequest('same device', mode, HOP_FIGURES.keepAliveRps, BOUND.sameDevice),
    perRequest('same device', mode, HOP_FIGURES.pacedP99, BOUND.latency),
    perRequest('two devices', mode, HOP_FIGURES.keepAliveRps, BOUND.twoDevices),
    perRequest('two devices', mode, HOP_FIGURES.pacedP99, BOUND.latency)
  ])
]

export function renderNodeTargets (steps: readonly LadderStep[], results: readonly HopResult[]): string[] {
  return [
    '### Targets', '',
    '| figure | target | this run | what bounds it |',
    '|---|---:|---:|---|',
    ...NODE_TARGETS.map(target => {
      const measured = target.check(steps, results)
      const shown = measured === undefined ? '—' : `${measured.shown}, ${measured.reached ? 'reached' : '**missed**'}`
      return `| ${target.label} | ${target.target} | ${shown} | ${target.bound} |`
    }),
    ''
  ]
}

/** Each target as one line for `npm run bench`'s output. */
export function nodeTargetLines (steps: readonly LadderStep[], results: readonly HopResult[]): string[] {
  return NODE_TARGETS.map(target => {
    const measured = target.check(steps, results)
    const shown = measured === undefined ? '—' : `${measured.shown}  ${measured.reached ? 'reached' : 'MISSED'}`
    return `node mode: ${target.label}`.padEnd(72) + ` ${shown}  (target ${target.target})`
  })
}
