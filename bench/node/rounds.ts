/**
 * The side-by-side rounds: a node proxy on each device (d1 serving the client and the same-device server, d2 the
 * other device's server) and the sidecars already running in their apps' namespaces; every hop warmed up, then the
 * rounds, each running every hop in turn (interleaved, so a slow spell of the shared machine hits node mode and the
 * sidecar pair alike); and each proxy process's memory before and after.
 */
import type { Plan } from '../proxy/loads'
import { clockTicksPerSecond } from '../proxy/proc'
import type { Processes } from '../proxy/processes'
import type { Devices } from './devices'
import type { HopResult } from './figures'
import { hopPaths, measureHop, warmHop } from './hops'
import type { Carrier, HopPath, HopRound } from './hops'
import { APPS, DEVICE_ONE, DEVICE_TWO, NODE_BRIDGE } from './layout'
import type { Layout } from './layout'
import { procMemory, sampleMemory } from './memory'
import type { MemorySample, ProbedProcess } from './memory'
import { startNodeProxy } from './node-proxy-process'
import type { AgentSockets } from './stand'

/** One proxy process of the rounds: how many apps it serves, its memory once started and at its peak. */
export interface ProxyMemory {
  readonly name: string
  readonly carrier: Carrier
  readonly apps: number
  /** Once started, before any load. */
  readonly idle: MemorySample
  readonly peakRssMb: number
  /** Private resident memory after the rounds (RssAnon: without the program pages every Node process shares). */
  readonly privateMb: number
}

export interface RoundsContext {
  readonly devices: Devices
  readonly processes: Processes
  readonly dir: string
  readonly agent: AgentSockets
  readonly layout: Layout
  /** The sidecars, by app. */
  readonly sidecars: ReadonlyMap<string, ProbedProcess>
  readonly progress: (text: string) => void
}

export async function runRounds (context: RoundsContext, plan: Plan): Promise<{ results: HopResult[], proxies: ProxyMemory[] }> {
  const { devices, processes, dir, agent, layout, sidecars, progress } = context
  progress('rounds: a node proxy on each device')
  const common = { appNetworks: layout.appNetworks, guardBridge: NODE_BRIDGE }
  const one = await startNodeProxy(devices, processes, dir, agent, { ...common, device: DEVICE_ONE, apps: [APPS.nodeClient, APPS.nodeServer] })
  const two = await startNodeProxy(devices, processes, dir, agent, { ...common, device: DEVICE_TWO, apps: [APPS.nodeServerTwo] })
  const watched: Array<{ name: string, carrier: Carrier, apps: number, process: ProbedProcess }> = [
    { name: `node proxy of ${DEVICE_ONE}`, carrier: 'node proxy', apps: 2, process: one },
    { name: `node proxy of ${DEVICE_TWO}`, carrier: 'node proxy', apps: 1, process: two },
    ...[...sidecars].map(([app, process]) => ({ name: `sidecar of ${app}`, carrier: 'sidecar pair' as const, apps: 1, process }))
  ]
  const idle = new Map<number, MemorySample>()
  for (const { process } of watched) idle.set(process.pid, await sampleMemory(process.pid, process.memoryFile))
  const paths = hopPaths(devices, { nodeOne: one.pid, nodeTwo: two.pid, sidecars })
  progress('rounds: warm-up')
  for (const path of paths) await processes.checked(warmHop(path, plan.loads))
  const ticksPerSecond = await clockTicksPerSecond()
  const rounds = new Map<HopPath, HopRound[]>(paths.map(path => [path, []]))
  for (let round = 1; round <= plan.rounds; round++) {
    progress(`rounds: round ${round} of ${plan.rounds}`)
    for (const path of paths) rounds.get(path)?.push(await processes.checked(measureHop(path, plan.loads, ticksPerSecond)))
  }
  const results = paths.map(({ hop, carrier, mode }, i) => ({ hop, carrier, mode, rounds: rounds.get(paths[i]) ?? [] }))
  const proxies = watched.map(({ name, carrier, apps, process: { pid } }) => {
    const now = procMemory(pid)
    return { name, carrier, apps, idle: idle.get(pid) as MemorySample, peakRssMb: now.peakRssMb, privateMb: now.privateMb }
  })
  return { results, proxies }
}
