/**
 * Node mode's lines in `npm run bench`'s output: the node proxy's memory serving N apps and per app, each hop's
 * figures as ratios to the sidecar pair, and the targets.
 */
import { formatNumber, formatRatio } from '../proxy/figures'
import { HOP_FIGURES, perApp, ratioToSidecars } from './figures'
import type { LadderStep } from './figures'
import { hopName } from './hops'
import type { NodeReport } from './report'
import { nodeTargetLines } from './targets'

const line = (label: string, value: string): string => `node mode: ${label}`.padEnd(72) + ` ${value}`

/** "1 / 10 / 50" and "62.1 / 70.3 / 98.0 MB" for the steps that have a value. */
function series (steps: readonly LadderStep[], pick: (step: LadderStep) => number | undefined, digits: number): [string, string] {
  const shown = steps.map(step => ({ apps: step.apps, value: pick(step) })).filter((s): s is { apps: number, value: number } => s.value !== undefined)
  return [shown.map(s => s.apps).join(' / '), `${shown.map(s => formatNumber(s.value, digits)).join(' / ')} MB`]
}

export function memoryLines (steps: readonly LadderStep[]): string[] {
  const [idleApps, idle] = series(steps, s => s.idle.rssMb, 1)
  const [peakApps, peak] = series(steps, s => s.peakRssMb, 1)
  const marginal = perApp(steps, s => s.idle.rssMb)
  const [marginalApps, perAppIdle] = series(steps, s => marginal.find(p => p.apps === s.apps)?.marginalMb, 2)
  const averagePeak = perApp(steps, s => s.peakRssMb)
  const [averageApps, perAppPeak] = series(steps, s => averagePeak.find(p => p.apps === s.apps)?.averageMb, 2)
  return [
    line(`node proxy RSS, idle, serving ${idleApps} apps`, idle),
    ...peakApps === '' ? [] : [line(`node proxy RSS, peak under load, serving ${peakApps} apps`, peak)],
    ...marginalApps === '' ? [] : [line(`RSS per app, (RSS(N) − RSS(1)) / (N − 1), idle, N = ${marginalApps}`, perAppIdle)],
    ...averageApps === '' ? [] : [line(`RSS per app, RSS(N) / N at the peak, N = ${averageApps}`, perAppPeak)]
  ]
}

export function nodeSummaryLines (report: NodeReport): string[] {
  const hops = report.results.filter(result => result.carrier === 'node proxy').map(result => {
    const cell = (fig: typeof HOP_FIGURES[keyof typeof HOP_FIGURES], unit: string): string =>
      `${formatNumber(fig.value(result), fig.digits)}${unit} (${formatRatio(ratioToSidecars(fig, result, report.results))})`
    return line(`${hopName(result)}: keep-alive · p99 at ${report.loads.paced.rate.toLocaleString('en-US')}/s · CPU per 10k`,
      `${cell(HOP_FIGURES.keepAliveRps, ' req/s')} · ${cell(HOP_FIGURES.pacedP99, ' ms')} · ${cell(HOP_FIGURES.cpuPer10k, ' s')}`)
  })
  return [...memoryLines(report.steps), ...hops, line('(× the sidecar pair on the same hop and mode, same rounds)', ''), ...nodeTargetLines(report.steps, report.results)]
}
