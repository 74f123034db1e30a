/**
 * Side-by-side proxy benchmark on loopback: load clients → {direct, Chaperone TCP, Chaperone HTTP, haproxy TCP,
 * haproxy HTTP, ghostunnel TCP, nginx} → a one-worker nginx backend. Writes results.md and results.svg to bench/out/
 * (untracked), or over the committed bench/results.md and results.svg with CHAPERONE_BENCH_UPDATE=1, and returns the
 * report's lines. `npm run build --silent && node dist/bench/proxy/run.js`; also run by `npm run bench` (tools.ts
 * installs the missing tools, or says why it cannot; without Go, the ghostunnel path is left out and the report says
 * why). CHAPERONE_BENCH_QUICK=1: one short round, to see every path work (loads.ts).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { packageFile } from '../../config/package-files'
import { startHolder } from './audit'
import type { ConnectionAudit, Holder } from './audit'
import { renderChart } from './chart'
import type { PathResult, RoundResult } from './figures'
import { ghostunnelVersion } from './ghostunnel'
import { measureRound, planOf, rssMb, warmUp } from './loads'
import type { Plan } from './loads'
import { startPaths } from './paths'
import type { Path } from './paths'
import { clockTicksPerSecond } from './proc'
import { Processes, execText } from './processes'
import { renderReport } from './report'
import { ensureGhostunnel, ensureTools } from './tools'
import { printLines, withCleanUp } from '../run-alone'

/** Where a run writes its results: bench/out/, or over the committed ones only when asked (CHAPERONE_BENCH_UPDATE=1). */
export function resultsDir (env: NodeJS.ProcessEnv = process.env): string {
  const bench = packageFile('bench')
  return env.CHAPERONE_BENCH_UPDATE === '1' ? bench : join(bench, 'out')
}
const CHART_FILE = 'results.svg'

const progress = (text: string): void => { process.stderr.write(`proxy benchmark: ${text}\n`) }

/** wrk prints its version only with its usage and exits 1; take the first version-like word whichever way it comes. */
async function versionOf (command: string, args: string[]): Promise<string> {
  let text: string
  try {
    text = await execText(command, args)
  } catch (err) {
    text = `${(err as { stdout?: string }).stdout ?? ''}${(err as { stderr?: string }).stderr ?? ''}`
  }
  return /(\d+\.\d+[.\w-]*)/.exec(text)?.[1] ?? 'unknown'
}

async function measure (paths: readonly Path[], processes: Processes, holder: Holder, plan: Plan): Promise<PathResult[]> {
  const ticksPerSecond = await clockTicksPerSecond()
  const idle = new Map(paths.map(path => [path, rssMb(path, 'rssKb')]))
  const audits = new Map<Path, ConnectionAudit>()
  progress('warm-up')
  for (const path of paths) audits.set(path, await processes.checked(warmUp(path, plan.loads, holder)))
  const rounds = new Map<Path, RoundResult[]>(paths.map(p => [p, []]))
  // Interleaved, so a slow spell of a shared machine hits every path rather than one.
  for (let round = 1; round <= plan.rounds; round++) {
    progress(`round ${round} of ${plan.rounds}`)
    for (const path of paths) rounds.get(path)?.push(await processes.checked(measureRound(path, plan.loads, ticksPerSecond)))
  }
  return paths.map(path => ({
    name: path.name, proxy: path.proxy, mode: path.mode, rounds: rounds.get(path) ?? [], audit: audits.get(path) as ConnectionAudit,
    idleRssMb: idle.get(path) ?? [], peakRssMb: rssMb(path, 'peakRssKb'), privateRssMb: rssMb(path, 'privateKb')
  }))
}

export async function benchProxies (): Promise<string[]> {
  const plan = planOf()
  const out = resultsDir()
  if (plan.quick && out === packageFile('bench')) return ['proxy benchmark not run: CHAPERONE_BENCH_QUICK=1 is a smoke test, its figures do not replace the committed results']
  const skipped = await ensureTools(progress)
  if (skipped !== undefined) return [skipped]
  const ghostunnel = await ensureGhostunnel(progress)
  const notes = 'skipped' in ghostunnel ? [ghostunnel.skipped] : []
  if (plan.quick) notes.push('CHAPERONE_BENCH_QUICK=1: one short round, a smoke test of every path; these figures are not results')
  for (const note of notes) progress(note)
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-proxy-bench-'))
  const processes = new Processes()
  const holder = await startHolder()
  const cleanUp = async (): Promise<void> => {
    await processes.stopAll()
    await holder.close()
    rmSync(dir, { recursive: true, force: true })
  }
  // Ctrl-C mid-run must not leave haproxy, nginx or sidecars behind.
  return await withCleanUp(cleanUp, async () => {
    const started = Date.now()
    const binary = 'binary' in ghostunnel ? ghostunnel.binary : undefined
    const paths = await startPaths(dir, processes, holder.port, binary)
    const results = await measure(paths, processes, holder, plan)
    const versions: Record<string, string> = {
      node: process.version, openssl: process.versions.openssl, haproxy: await versionOf('haproxy', ['-v']),
      nginx: await versionOf('nginx', ['-v']), wrk: await versionOf('wrk', ['--version'])
    }
    if (binary !== undefined) versions.ghostunnel = ghostunnelVersion(await execText(binary, ['--version']))
    const minutes = (Date.now() - started) / 60_000
    const report = renderReport(results, { rounds: plan.rounds, loads: plan.loads, versions, minutes, chart: CHART_FILE, notes })
    mkdirSync(out, { recursive: true })
    writeFileSync(join(out, 'results.md'), report)
    writeFileSync(join(out, CHART_FILE), renderChart(results))
    return [report, `written to ${join(out, 'results.md')} and ${CHART_FILE}${out === packageFile('bench') ? '' : ' (CHAPERONE_BENCH_UPDATE=1 replaces the committed ones)'}`]
  })
}

if (require.main === module) printLines(benchProxies)
