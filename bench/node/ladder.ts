/**
 * The memory ladder: one node proxy on device d1 serving N app namespaces (N = 1, 10, 50; 1, 2, 10 in a quick run),
 * a fresh process for each N. Its memory once every app is served and it has been idle a few seconds; then, with two
 * apps or more, the proxy benchmark's loads between two of its apps (keep-alive in HTTP and in TCP mode, a 1 MiB
 * body), the HTTP run's rate and CPU cost, and its peak resident set. At the two largest sizes a heap snapshot
 * (taken last, since writing one grows the process) says which classes of objects one more app adds.
 */
import { rmSync } from 'node:fs'
import type { Processes } from '../proxy/processes'
import { BODY_PATH } from '../proxy/configs'
import type { Loads } from '../proxy/loads'
import { clockTicksPerSecond, treeUsage } from '../proxy/proc'
import { runWrk } from '../proxy/wrk'
import type { Devices } from './devices'
import type { HeapGrowth, LadderStep } from './figures'
import { perAppGrowth, readHeapClasses } from './heap-classes'
import type { HeapClasses } from './heap-classes'
import { APPS, DEVICE_ONE, NODE_BRIDGE } from './layout'
import type { Layout } from './layout'
import { procMemory, sampleMemory, takeHeapSnapshot } from './memory'
import type { MemorySample } from './memory'
import { startNodeProxy } from './node-proxy-process'
import { PORTS } from './stand'
import type { AgentSockets } from './stand'

/** Idle time after the last app is served, before the idle samples: adoption's garbage has had time to be collected. */
const SETTLE_MS = 3000
/** Idle samples, a second apart; the one of median RSS is kept (a collection falling on one moves it by megabytes). */
const IDLE_SAMPLES = 5
/** How many classes the heap's growth per app names. */
const TOP_CLASSES = 12

export interface LadderContext {
  readonly devices: Devices
  readonly processes: Processes
  readonly dir: string
  readonly agent: AgentSockets
  readonly layout: Layout
  readonly loads: Loads
  readonly progress: (text: string) => void
}

/** The loads between the first two apps, through node proxy `pid`; the HTTP-mode keep-alive rate and its CPU cost. */
async function loadPair (context: LadderContext, pid: number, ticksPerSecond: number): Promise<Pick<LadderStep, 'keepAliveRps' | 'keepAliveCpuPer10k'>> {
  const { devices, loads } = context
  const launcher = devices.launcher(devices.apps[APPS.nodeClient].ns)
  const server = devices.apps[APPS.nodeServer].address
  const before = treeUsage(pid).cpuTicks
  const http = await runWrk(`http://${server}:${PORTS.http}/`, loads.keepAlive, launcher)
  const cpuSeconds = (treeUsage(pid).cpuTicks - before) / ticksPerSecond
  await runWrk(`http://${server}:${PORTS.tcp}/`, loads.keepAlive, launcher)
  await runWrk(`http://${server}:${PORTS.http}${BODY_PATH}`, loads.body, launcher)
  return { keepAliveRps: http.requestsPerSecond, keepAliveCpuPer10k: cpuSeconds / http.requests * 10_000 }
}

async function medianSample (pid: number, file: string): Promise<MemorySample> {
  const samples: MemorySample[] = []
  for (let i = 0; i < IDLE_SAMPLES; i++) {
    if (i > 0) await new Promise(resolve => setTimeout(resolve, 1000))
    samples.push(await sampleMemory(pid, file))
  }
  return samples.sort((a, b) => a.rssMb - b.rssMb)[Math.floor(samples.length / 2)]
}

async function step (context: LadderContext, apps: number, snapshot: boolean, ticksPerSecond: number): Promise<{ step: LadderStep, classes?: HeapClasses }> {
  const { devices, processes, dir, agent, layout } = context
  context.progress(`ladder: a node proxy serving ${apps} app${apps === 1 ? '' : 's'}`)
  const node = await startNodeProxy(devices, processes, dir, agent, {
    device: DEVICE_ONE, apps: layout.ladderApps.slice(0, apps), appNetworks: layout.appNetworks, guardBridge: NODE_BRIDGE
  })
  try {
    await new Promise(resolve => setTimeout(resolve, SETTLE_MS))
    const idle = await medianSample(node.pid, node.memoryFile)
    const load = apps >= 2 ? await loadPair(context, node.pid, ticksPerSecond) : { keepAliveRps: undefined, keepAliveCpuPer10k: undefined }
    const measured = { apps, idle, peakRssMb: apps >= 2 ? procMemory(node.pid).peakRssMb : undefined, ...load }
    if (!snapshot) return { step: measured }
    const file = await takeHeapSnapshot(node.pid, node.memoryFile)
    const classes = readHeapClasses(file)
    rmSync(file, { force: true })
    return { step: measured, classes }
  } finally {
    await processes.stop(node.started)
  }
}

/** Every size in turn; the heap's growth per app between the two largest. */
export async function runLadder (context: LadderContext, sizes: readonly number[]): Promise<{ steps: LadderStep[], heap: HeapGrowth | undefined }> {
  // Both under the same loads, so what the loads leave (compiled code, pooled connections) cancels out.
  const largest = sizes.filter(apps => apps >= 2).sort((a, b) => a - b).slice(-2)
  const steps: LadderStep[] = []
  const snapshots = new Map<number, HeapClasses>()
  const ticksPerSecond = await clockTicksPerSecond()
  for (const apps of sizes) {
    const result = await step(context, apps, largest.length === 2 && largest.includes(apps), ticksPerSecond)
    steps.push(result.step)
    if (result.classes !== undefined) snapshots.set(apps, result.classes)
  }
  const [fewer, more] = largest.map(apps => ({ apps, classes: snapshots.get(apps) }))
  if (fewer?.classes === undefined || more?.classes === undefined) return { steps, heap: undefined }
  const classes = perAppGrowth({ apps: fewer.apps, classes: fewer.classes }, { apps: more.apps, classes: more.classes }, TOP_CLASSES)
  return { steps, heap: { fromApps: fewer.apps, toApps: more.apps, classes } }
}
