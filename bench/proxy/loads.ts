/**
 * The loads every path gets in a round, and what is sampled around them: the CPU time of the path's proxy
 * processes (both hops, each a process tree) over the wrk runs, and their peak resident set at the end.
 */
import { auditNewConnections } from './audit'
import type { ConnectionAudit, Holder } from './audit'
import { BODY_PATH } from './configs'
import type { RoundResult } from './figures'
import { runPaced } from './paced'
import type { PacedOptions } from './paced'
import type { Path } from './paths'
import { treeUsage } from './proc'
import { runWrk } from './wrk'
import type { WrkOptions, WrkResult } from './wrk'

export interface Loads { readonly keepAlive: WrkOptions, readonly newConnections: WrkOptions, readonly body: WrkOptions, readonly paced: PacedOptions }

export const LOADS = {
  keepAlive: { threads: 1, connections: 50, seconds: 5 },
  /** wrk reconnects after every response that says `Connection: close`. */
  newConnections: { threads: 1, connections: 50, seconds: 4, header: 'Connection: close' },
  body: { threads: 1, connections: 4, seconds: 4 },
  paced: { rate: 1000, seconds: 5, connections: 10 }
} as const satisfies Loads

const ROUNDS = 3

/** How many rounds of which loads a run makes; `quick`: a smoke test of every path, whose figures are not results. */
export interface Plan { readonly rounds: number, readonly loads: Loads, readonly quick: boolean }

/**
 * Three rounds of LOADS; with CHAPERONE_BENCH_QUICK=1, one round of every load for a second or two, to see that
 * every path works (a minute or two in all, on a busy machine too).
 */
export function planOf (env: NodeJS.ProcessEnv = process.env): Plan {
  if (env.CHAPERONE_BENCH_QUICK !== '1') return { rounds: ROUNDS, loads: LOADS, quick: false }
  const loads: Loads = {
    keepAlive: { ...LOADS.keepAlive, seconds: 2 },
    newConnections: { ...LOADS.newConnections, seconds: 2 },
    body: { ...LOADS.body, seconds: 1 },
    paced: { ...LOADS.paced, seconds: 2 }
  }
  return { rounds: 1, loads, quick: true }
}

const cpuTicks = (path: Path): number => path.hops.reduce((sum, hop) => sum + treeUsage(hop.pid).cpuTicks, 0)

/** A wrk run and the CPU seconds the path's proxies spent meanwhile (undefined when there is no proxy). */
async function wrkWithCpu (path: Path, url: string, options: WrkOptions, ticksPerSecond: number): Promise<[WrkResult, number | undefined]> {
  if (path.hops.length === 0) return [await runWrk(url, options), undefined]
  const before = cpuTicks(path)
  const result = await runWrk(url, options)
  return [result, (cpuTicks(path) - before) / ticksPerSecond]
}

export async function measureRound (path: Path, loads: Loads, ticksPerSecond: number): Promise<RoundResult> {
  const [keepAlive, keepAliveCpuSeconds] = await wrkWithCpu(path, path.url, loads.keepAlive, ticksPerSecond)
  const [newConnections, newConnectionCpuSeconds] = await wrkWithCpu(path, path.url, loads.newConnections, ticksPerSecond)
  const body = await runWrk(bodyUrl(path), loads.body)
  const paced = await runPaced(path.url, loads.paced)
  return { keepAlive, keepAliveCpuSeconds, newConnections, newConnectionCpuSeconds, body, paced }
}

const bodyUrl = (path: Path): string => new URL(BODY_PATH, path.url).toString()

/**
 * Before the rounds: a short keep-alive run (TLS sessions, upstream pools and V8's JIT warm), the connection
 * audit (which also warms the new-connection path), and a short large-body run.
 */
export async function warmUp (path: Path, loads: Loads, holder: Holder): Promise<ConnectionAudit> {
  await runWrk(path.url, { ...loads.keepAlive, seconds: 1 })
  const audit = await auditNewConnections(path.url, path.ports, holder)
  await runWrk(bodyUrl(path), { ...loads.body, seconds: 1 })
  return audit
}

/** Each hop's resident set, now or at its peak so far, in MB (10^6 bytes; /proc counts in KiB). */
export const rssMb = (path: Path, which: 'rssKb' | 'peakRssKb' | 'privateKb'): number[] => path.hops.map(hop => treeUsage(hop.pid)[which] * 1024 / 1e6)
