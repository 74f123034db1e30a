/**
 * The hops node mode is compared on: a client app calling a server app on the same device, and on another device,
 * carried either by node proxies or by a sidecar pair in transparent mode, in HTTP mode (the app's port in httpPorts)
 * and in TCP mode. The load clients run inside the client app's namespace and call the server app by its address and
 * port, as the unchanged app would: the redirect rules bring the connection to the proxy. Each round runs a
 * keep-alive wrk load (requests/s, and the proxies' CPU time over it) and the paced client (p99 at a fixed rate).
 */
import type { Loads } from '../proxy/loads'
import { runPaced } from '../proxy/paced'
import type { PacedResult } from '../proxy/paced'
import { treeUsage } from '../proxy/proc'
import { runWrk } from '../proxy/wrk'
import type { WrkResult } from '../proxy/wrk'
import type { Devices } from './devices'
import { APPS } from './layout'
import { PORTS } from './stand'

export type Hop = 'same device' | 'two devices'
export type Carrier = 'node proxy' | 'sidecar pair'
export type Mode = keyof typeof PORTS

export interface HopInfo { readonly hop: Hop, readonly carrier: Carrier, readonly mode: Mode }

export interface HopPath extends HopInfo {
  /** Runs a load client inside the client app's namespace. */
  readonly launcher: readonly string[]
  readonly url: string
  /** The proxy processes that carry the hop, for their CPU time. */
  readonly pids: readonly number[]
}

export interface HopRound {
  readonly keepAlive: WrkResult
  /** CPU seconds of the hop's proxy processes over the keep-alive run. */
  readonly keepAliveCpuSeconds: number
  readonly paced: PacedResult
}

export const hopName = (info: HopInfo): string => `${info.hop}, ${info.mode === 'http' ? 'HTTP' : 'TCP'}, ${info.carrier}`

/** The running proxies the paths need: node proxies by device, sidecars by app. */
export interface RunningProxies { readonly nodeOne: number, readonly nodeTwo: number, readonly sidecars: ReadonlyMap<string, { readonly pid: number }> }

/** Every hop in both modes, node proxy and sidecar pair side by side (the order of a round). */
export function hopPaths (devices: Devices, running: RunningProxies): HopPath[] {
  const sidecar = (app: string): number => {
    const pid = running.sidecars.get(app)?.pid
    if (pid === undefined) throw new Error(`no sidecar runs in ${app}`)
    return pid
  }
  const hops: Array<{ hop: Hop, carrier: Carrier, client: string, server: string, pids: number[] }> = [
    { hop: 'same device', carrier: 'node proxy', client: APPS.nodeClient, server: APPS.nodeServer, pids: [running.nodeOne] },
    { hop: 'same device', carrier: 'sidecar pair', client: APPS.sidecarClient, server: APPS.sidecarServer, pids: [sidecar(APPS.sidecarClient), sidecar(APPS.sidecarServer)] },
    { hop: 'two devices', carrier: 'node proxy', client: APPS.nodeClient, server: APPS.nodeServerTwo, pids: [running.nodeOne, running.nodeTwo] },
    { hop: 'two devices', carrier: 'sidecar pair', client: APPS.sidecarClient, server: APPS.sidecarServerTwo, pids: [sidecar(APPS.sidecarClient), sidecar(APPS.sidecarServerTwo)] }
  ]
  return (['http', 'tcp'] as const).flatMap(mode => hops.map(({ client, server, ...info }) => ({
    ...info, mode, launcher: devices.launcher(devices.apps[client].ns), url: `http://${devices.apps[server].address}:${PORTS[mode]}/`
  })))
}

const cpuTicks = (path: HopPath): number => path.pids.reduce((sum, pid) => sum + treeUsage(pid).cpuTicks, 0)

export async function measureHop (path: HopPath, loads: Loads, ticksPerSecond: number): Promise<HopRound> {
  const before = cpuTicks(path)
  const keepAlive = await runWrk(path.url, loads.keepAlive, path.launcher)
  const keepAliveCpuSeconds = (cpuTicks(path) - before) / ticksPerSecond
  const paced = await runPaced(path.url, loads.paced, path.launcher)
  return { keepAlive, keepAliveCpuSeconds, paced }
}

/** Before the rounds: a short keep-alive run (TLS sessions, upstream pools and V8's JIT warm). */
export async function warmHop (path: HopPath, loads: Loads): Promise<void> {
  await runWrk(path.url, { ...loads.keepAlive, seconds: 1 }, path.launcher)
}
