/**
 * Node mode's section of results.md: the targets and what bounds them, the node proxy's memory serving N apps and
 * what each app adds (from /proc and from inside the process, and by class of heap object), the hops side by side
 * with the sidecar pair as ratios, each proxy process's memory in the rounds, the method, and every round.
 */
import { formatNumber, formatRatio } from '../proxy/figures'
import type { Loads } from '../proxy/loads'
import { HOP_FIGURES, perApp, ratioToSidecars, roundRatios, sidecarsMb } from './figures'
import type { HeapGrowth, HopFigure, HopResult, LadderStep } from './figures'
import { hopName } from './hops'
import { TOPOLOGY } from './method'
import { BOUNDS_SECTION } from './bounds'
import type { ProxyMemory } from './rounds'
import { renderNodeTargets } from './targets'

export interface NodeReport {
  readonly steps: readonly LadderStep[]
  readonly heap: HeapGrowth | undefined
  readonly results: readonly HopResult[]
  readonly proxies: readonly ProxyMemory[]
  readonly rounds: number
  readonly loads: Loads
  readonly minutes: number
  readonly notes: readonly string[]
}

/** A Markdown table: `numeric` columns are right-aligned. */
export function markdownTable (headers: ReadonlyArray<readonly [string, 'text' | 'numeric']>, rows: ReadonlyArray<readonly string[]>): string[] {
  return [
    `| ${headers.map(([name]) => name).join(' | ')} |`,
    `|${headers.map(([, kind]) => kind === 'numeric' ? '---:' : '---').join('|')}|`,
    ...rows.map(row => `| ${row.join(' | ')} |`)
  ]
}

const mb = (value: number | undefined, digits = 1): string => value === undefined ? '—' : `${formatNumber(value, digits)} MB`

function memoryTables (steps: readonly LadderStep[]): string[] {
  const rows = steps.map(step => {
    const { idle } = step
    return [String(step.apps), mb(idle.rssMb), mb(step.peakRssMb), mb(idle.privateMb), `${formatNumber(idle.heapUsedMb, 1)} / ${formatNumber(idle.heapTotalMb, 1)} MB`,
      mb(idle.externalMb), mb(idle.nativeMb), String(idle.handles), formatNumber(step.keepAliveRps, 0), formatNumber(step.keepAliveCpuPer10k, 2)]
  })
  const parts: Array<[string, (step: LadderStep) => number | undefined]> = [
    ['RSS', s => s.idle.rssMb], ['private', s => s.idle.privateMb], ['V8 heap (total)', s => s.idle.heapTotalMb],
    ['external', s => s.idle.externalMb], ['native', s => s.idle.nativeMb]
  ]
  const marginal = parts.map(([, pick]) => perApp(steps, pick))
  const idleAverage = perApp(steps, s => s.idle.rssMb)
  const peakAverage = perApp(steps, s => s.peakRssMb)
  const perAppRows = steps.filter(step => step.apps > 1).map(step => {
    const at = (list: ReturnType<typeof perApp>): ReturnType<typeof perApp>[number] | undefined => list.find(p => p.apps === step.apps)
    return [String(step.apps), ...marginal.map(list => mb(at(list)?.marginalMb, 2)), mb(at(idleAverage)?.averageMb, 2), mb(at(peakAverage)?.averageMb, 2)]
  })
  return [
    '### Memory: one node proxy serving N app namespaces', '',
    'A fresh node proxy for each N. Idle: once every app is served and it has been idle 3 s (no load yet), the median of five samples a ' +
      'second apart (a collection moves one by megabytes: read the per-app figures at the largest N, where the difference is well above that). Peak: VmHWM after the loads ' +
      'between two of its apps (keep-alive in HTTP and TCP mode, a 1 MiB body); with one app there is no hop between two of its apps. ' +
      'Private: RssAnon, the resident set without the program\'s and libraries\' pages (about 45 MB of Node shared by every Node process). ' +
      'V8 heap, external (memory held outside the heap for JavaScript objects: Buffers, …) and handles: from inside the process ' +
      '(`process.memoryUsage()`, bench/node/memory-probe.ts); native: private − V8 heap total − external (OpenSSL contexts, gRPC and ' +
      'Node\'s C++ objects, malloc\'s free lists).', '',
    ...markdownTable([['apps', 'numeric'], ['idle RSS', 'numeric'], ['peak RSS under load', 'numeric'], ['private, idle', 'numeric'],
      ['V8 heap used / total', 'numeric'], ['external', 'numeric'], ['native', 'numeric'], ['handles', 'numeric'], ['keep-alive req/s, HTTP', 'numeric'],
      ['its CPU s / 10k req', 'numeric']], rows),
    '',
    'What each app adds, (X(N) − X(1)) / (N − 1), idle; and the node proxy\'s RSS shared out among its apps, RSS(N) / N:', '',
    ...markdownTable([['apps', 'numeric'], ...parts.map(([name]) => [`${name} per app`, 'numeric'] as const),
      ['RSS(N) / N, idle', 'numeric'], ['RSS(N) / N, peak', 'numeric']], perAppRows),
    ''
  ]
}

function heapTable (heap: HeapGrowth | undefined): string[] {
  if (heap === undefined) return []
  const kb = (bytes: number): string => formatNumber(bytes / 1024, 1)
  return [
    `### Where one more app's heap goes (heap snapshots at ${heap.fromApps} and ${heap.toApps} apps)`, '',
    `Self sizes summed by class (objects by constructor, the rest by kind), their growth from ${heap.fromApps} to ${heap.toApps} apps divided by ` +
      `${heap.toApps - heap.fromApps}: the largest ${heap.classes.length}. V8 collects garbage before a snapshot, so these are live objects. ` +
      'A class with less than one object per app is what the loads left behind (a buffer of another size), not what an app holds; ' +
      '`(code)` is compiled code, which moves with what V8 happened to optimise (12–31 KiB per app between runs).', '',
    ...markdownTable([['class', 'text'], ['KiB per app', 'numeric'], ['objects per app', 'numeric']],
      heap.classes.map(c => [`\`${c.name.replaceAll('|', '\\|').slice(0, 80)}\``, kb(c.bytesPerApp), formatNumber(c.countPerApp, 1)])),
    ''
  ]
}

function hopTable (results: readonly HopResult[]): string[] {
  const figures: HopFigure[] = [HOP_FIGURES.keepAliveRps, HOP_FIGURES.pacedP99, HOP_FIGURES.cpuPer10k]
  const errors = (result: HopResult): string => String(result.rounds.reduce((sum, r) => sum + r.keepAlive.errors + r.paced.errors, 0))
  return [
    '### Per request: node proxies and a sidecar pair on the same hop', '',
    ...markdownTable([['hop', 'text'], ...figures.flatMap(fig => [[`${fig.label}, ${fig.unit}`, 'numeric'], ['× sidecar pair', 'numeric']] as const), ['errors', 'numeric']],
      results.map(result => [hopName(result), ...figures.flatMap(fig => [formatNumber(fig.value(result), fig.digits), formatRatio(ratioToSidecars(fig, result, results))]), errors(result)])),
    ''
  ]
}

function proxiesTable (proxies: readonly ProxyMemory[]): string[] {
  return [
    '### Proxy processes in the rounds', '',
    'Once started (before any load): resident, private, V8\'s heap, external and native as in the memory table; then the peak over the rounds ' +
      'and the private part after them.', '',
    ...markdownTable([['process', 'text'], ['apps served', 'numeric'], ['RSS once started', 'numeric'], ['private', 'numeric'], ['V8 heap used / total', 'numeric'],
      ['external', 'numeric'], ['native', 'numeric'], ['peak RSS', 'numeric'], ['private after the rounds', 'numeric']],
    proxies.map(p => [p.name, String(p.apps), mb(p.idle.rssMb), mb(p.idle.privateMb), `${formatNumber(p.idle.heapUsedMb, 1)} / ${formatNumber(p.idle.heapTotalMb, 1)} MB`,
      mb(p.idle.externalMb), mb(p.idle.nativeMb), mb(p.peakRssMb), mb(p.privateMb)])),
    ''
  ]
}

/** The largest ladder step against as many sidecars, from the first sidecar's sample once started. */
function versusSidecars (steps: readonly LadderStep[], proxies: readonly ProxyMemory[]): string[] {
  const sidecar = proxies.find(p => p.carrier === 'sidecar pair')
  const largest = steps.at(-1)
  if (sidecar === undefined || largest === undefined) return []
  const { rssMb, privateMb } = sidecar.idle
  return [
    `For comparison, a sidecar once started is ${mb(rssMb)} resident, ${mb(privateMb)} of it private; the rest, the program's pages, is shared ` +
      `by every Node process. ${largest.apps} apps with a sidecar each would hold about ${largest.apps} × ${mb(privateMb)} + ${mb(rssMb - privateMb)} = ` +
      `${mb(sidecarsMb(largest.apps, sidecar.idle), 0)} before any load, where one node proxy serving them holds ${mb(largest.idle.rssMb)}.`, ''
  ]
}

function roundsTable (results: readonly HopResult[]): string[] {
  /** Each round's figure; for node mode, with its ratio to the pair's in the same round. */
  const each = (fig: HopFigure) => (result: HopResult): string => {
    const ratios = roundRatios(fig, result, results)
    return result.rounds.map((r, i) => formatNumber(fig.round(r), fig.digits) + (result.carrier === 'node proxy' && ratios[i] !== undefined ? ` (${formatRatio(ratios[i])})` : '')).join(' / ')
  }
  const figures: HopFigure[] = [HOP_FIGURES.keepAliveRps, HOP_FIGURES.pacedP99, HOP_FIGURES.cpuPer10k]
  return ['### Every round', '',
    'In each round the node-mode hop ran right before the sidecar pair on the same hop; in brackets, its figure over the pair\'s in that round.', '',
    ...markdownTable([['hop', 'text'], ...figures.map(fig => [`${fig.label}, ${fig.unit}`, 'text'] as const)], results.map(r => [hopName(r), ...figures.map(fig => each(fig)(r))])),
    '']
}

function method (report: NodeReport): string[] {
  const { loads } = report
  return [
    '### Method', '',
    ...report.notes.map(note => `- **${note}**`),
    ...TOPOLOGY.map(line => `- ${line}`),
    `- loads, run inside the client app's namespace against the server app's address and port: keep-alive \`wrk -t${loads.keepAlive.threads} ` +
      `-c${loads.keepAlive.connections} -d${loads.keepAlive.seconds}s\`; the paced client (bench/proxy/paced.ts) at ${loads.paced.rate.toLocaleString('en-US')} ` +
      `requests/s for ${loads.paced.seconds} s over ${loads.paced.connections} connections, p99 from each request's intended send time; CPU: utime + stime ` +
      'of the hop\'s proxy processes over the keep-alive run',
    `- ${report.rounds} round${report.rounds === 1 ? '' : 's'} after a warm-up, every hop in turn in each (interleaved); figures are medians of the rounds; ` +
      `node mode's part of the run took ${report.minutes.toFixed(1)} minutes`,
    ''
  ]
}

export const SECTION_BEGIN = '<!-- node mode: begin -->'
export const SECTION_END = '<!-- node mode: end -->'

export function renderNodeSection (report: NodeReport): string {
  return [
    SECTION_BEGIN, '## Node mode: one proxy per device, side by side with a sidecar pair', '',
    ...renderNodeTargets(report.steps, report.results), ...BOUNDS_SECTION, ...memoryTables(report.steps), ...versusSidecars(report.steps, report.proxies),
    ...heapTable(report.heap), ...hopTable(report.results),
    ...proxiesTable(report.proxies), ...method(report), ...roundsTable(report.results), SECTION_END, ''
  ].join('\n')
}

/** results.md with node mode's section put in place of an earlier one, or added at the end. */
export function withNodeSection (existing: string, section: string): string {
  const [begin, end] = [existing.indexOf(SECTION_BEGIN), existing.indexOf(SECTION_END)]
  if (begin >= 0 && end > begin) return existing.slice(0, begin) + section + existing.slice(end + SECTION_END.length).replace(/^\n/, '')
  return existing === '' ? section : `${existing.replace(/\n*$/, '')}\n\n${section}`
}
