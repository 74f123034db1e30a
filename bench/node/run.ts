/**
 * Node mode's benchmark (issue point 6): the memory ladder (one node proxy serving 1, 10 and 50 app namespaces) and
 * the hops between two apps on one device and on two devices, node proxies side by side with a sidecar pair in
 * interleaved rounds. Root only (network namespaces, iptables); skipped with the reason otherwise. Puts its section
 * into results.md in bench/out/ (CHAPERONE_BENCH_UPDATE=1: the committed bench/results.md) and returns its lines for
 * `npm run bench`. Alone: `npm run build --silent && node dist/bench/node/run.js`. CHAPERONE_BENCH_QUICK=1: one
 * short round and a ladder of 1, 2 and 10 apps, to see every part work; its figures are not results.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { packageFile } from '../../config/package-files'
import { planOf } from '../proxy/loads'
import type { Plan } from '../proxy/loads'
import { Processes } from '../proxy/processes'
import { resultsDir } from '../proxy/run'
import { ensureTools } from '../proxy/tools'
import { printLines, withCleanUp } from '../run-alone'
import { createDevices } from './devices'
import type { Devices } from './devices'
import { runLadder } from './ladder'
import type { ProbedProcess } from './memory'
import { APPS, layoutOf } from './layout'
import type { Layout } from './layout'
import { renderNodeSection, withNodeSection } from './report'
import { runRounds } from './rounds'
import { startAgent, startBackendApp, startIdleApp, startTransparentSidecar } from './stand'
import type { AgentSockets } from './stand'
import { nodeSummaryLines } from './summary'
import { missingCommands } from './requirements'

/**
 * Five rounds, where the proxy benchmark makes three: eight hops share the machine's noise, and the per-request
 * targets are judged within 10 %. A quick run makes the plan's one.
 */
export const nodeRounds = (plan: Pick<Plan, 'quick' | 'rounds'>): number => plan.quick ? plan.rounds : 5

/**
 * The ladder's sizes: 1, 10 and 50 apps; 1, 2 and 10 in a quick run. The heap's growth per app is taken between the
 * two largest, which both carry the same loads (with one app there is none).
 */
export const ladderSizes = (plan: Pick<Plan, 'quick'>): number[] => plan.quick ? [1, 2, 10] : [1, 10, 50]

const progress = (text: string): void => { process.stderr.write(`node mode benchmark: ${text}\n`) }

/** Why this machine cannot run it, or undefined. */
export function nodeBenchSkipped (uid: number | undefined, missing: readonly string[]): string | undefined {
  if (uid !== 0) return 'node mode benchmark skipped: it needs root (network namespaces, iptables in them, a node proxy entering them); run `npm run bench` as root'
  if (missing.length > 0) return `node mode benchmark skipped: ${missing.join(', ')} not found (apt-get install -y iproute2 iptables util-linux curl procps)`
  return undefined
}

/** Every app of the layout running; the sidecars by app. */
async function startApps (devices: Devices, processes: Processes, dir: string, agent: AgentSockets, layout: Layout): Promise<Map<string, ProbedProcess>> {
  const uid = (app: string): number => layout.appUid.get(app) as number
  for (const app of [APPS.nodeServer, APPS.nodeServerTwo, APPS.sidecarServer, APPS.sidecarServerTwo]) await startBackendApp(devices, processes, dir, app, uid(app))
  for (const app of layout.ladderApps.filter(app => app !== APPS.nodeServer)) startIdleApp(devices, processes, app, uid(app))
  const sidecars = new Map<string, ProbedProcess>()
  for (const [app, sidecarUid] of layout.sidecarUid) sidecars.set(app, await startTransparentSidecar(devices, processes, dir, agent, app, sidecarUid))
  return sidecars
}

/** Writes the section into results.md (replacing an earlier one); where it went. */
function writeSection (section: string): string {
  const out = resultsDir()
  mkdirSync(out, { recursive: true })
  const file = join(out, 'results.md')
  writeFileSync(file, withNodeSection(existsSync(file) ? readFileSync(file, 'utf8') : '', section))
  return file
}

export async function benchNodeMode (): Promise<string[]> {
  const plan = planOf()
  if (plan.quick && resultsDir() === packageFile('bench')) return ['node mode benchmark not run: CHAPERONE_BENCH_QUICK=1 is a smoke test, its figures do not replace the committed results']
  const skipped = nodeBenchSkipped(process.getuid?.(), missingCommands()) ?? await ensureTools(progress)
  if (skipped !== undefined) return [skipped.replace(/^proxy benchmark/, 'node mode benchmark')]
  const notes = plan.quick ? ['CHAPERONE_BENCH_QUICK=1: one short round and a ladder of 1, 2 and 10 apps, a smoke test; these figures are not results'] : []
  const started = Date.now()
  const sizes = ladderSizes(plan)
  const layout = layoutOf(Math.max(...sizes))
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-node-bench-'))
  chmodSync(dir, 0o755)
  const processes = new Processes()
  progress(`${layout.ladderApps.length + 4} app namespaces on two devices`)
  const devices = await createDevices(layout.devices)
  const cleanUp = async (): Promise<void> => {
    await processes.stopAll()
    devices.destroy()
    rmSync(dir, { recursive: true, force: true })
  }
  return await withCleanUp(cleanUp, async () => {
    const agent = await startAgent(dir, processes, layout.entries)
    const sidecars = await startApps(devices, processes, dir, agent, layout)
    const context = { devices, processes, dir, agent, layout, progress }
    const { steps, heap } = await runLadder({ ...context, loads: plan.loads }, sizes)
    const rounds = nodeRounds(plan)
    const { results, proxies } = await runRounds({ ...context, sidecars }, { ...plan, rounds })
    const report = { steps, heap, results, proxies, rounds, loads: plan.loads, minutes: (Date.now() - started) / 60_000, notes }
    const file = writeSection(renderNodeSection(report))
    return [...nodeSummaryLines(report), `node mode: written to ${file} (its section "Node mode")`]
  })
}

if (require.main === module) printLines(benchNodeMode)
