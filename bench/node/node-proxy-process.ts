/**
 * A `chaperone node run` process for the benchmark, inside its device's namespace (where the device's bridge is,
 * as on a real device), serving the app namespaces it is given; with the memory probe preloaded (memory-probe.ts).
 * Started, it is waited for until /status says every app is served.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { execText } from '../proxy/processes'
import type { Processes, Started } from '../proxy/processes'
import type { Devices } from './devices'
import { probed } from './memory'
import type { ProbedProcess } from './memory'
import { CLI, NODE_FLAGS, PORTS, extraNodeArgs, until } from './stand'
import type { AgentSockets } from './stand'

const ADMIN = '127.0.0.1:15100'

export interface NodeProxyOptions {
  readonly device: string
  readonly apps: readonly string[]
  /** The app networks of every device (CIDR): a destination in one is reached through its node proxy's tunnel port. */
  readonly appNetworks: readonly string[]
  /** The device's bridge for node-mode apps, guarded (only the tunnel port passes between its apps). */
  readonly guardBridge: string
}

export interface NodeProxyProcess extends ProbedProcess {
  readonly started: Started
}

/** The node proxy's configuration file for `options`. */
export function nodeConfigYaml (devices: Devices, agent: AgentSockets, options: NodeProxyOptions): string {
  return [
    `delegatedIdentityApi: unix://${agent.delegated}`, `policy: ${agent.policyFile}`, `admin: ${ADMIN}`, 'logLevel: warn',
    `httpPorts: [${PORTS.http}]`, `appNetworks: [${options.appNetworks.map(n => `"${n}"`).join(', ')}]`, `guard: { bridges: [${options.guardBridge}] }`,
    'apps:', ...options.apps.map(app => `  - { name: ${app}, netns: /var/run/netns/${devices.apps[app].ns} }`), ''
  ].join('\n')
}

interface AppStatus { readonly name: string, readonly ready: boolean }

/** The apps /status says are ready, asked from inside the device (its admin listens on the device's loopback). */
async function readyApps (devices: Devices, device: string): Promise<string[]> {
  try {
    const [command, ...args] = [...devices.launcher(devices.deviceNs[device]), 'curl', '-sf', '-m', '2', `http://${ADMIN}/status`]
    const status = JSON.parse(await execText(command, args)) as { apps: AppStatus[] }
    return status.apps.filter(app => app.ready).map(app => app.name)
  } catch {
    return []
  }
}

/** Starts it; resolves once every app is served (a minute at most: fifty adoptions on a busy machine take a while). */
export async function startNodeProxy (devices: Devices, processes: Processes, dir: string, agent: AgentSockets, options: NodeProxyOptions): Promise<NodeProxyProcess> {
  const runDir = join(dir, `node-${options.device}-${options.apps.length}`)
  mkdirSync(runDir, { recursive: true })
  chmodSync(runDir, 0o755)
  const config = join(runDir, 'node.yaml')
  writeFileSync(config, nodeConfigYaml(devices, agent, options))
  const memoryFile = join(runDir, 'memory.json')
  const probe = probed(memoryFile)
  const [command, ...args] = [...devices.launcher(devices.deviceNs[options.device]), process.execPath, ...NODE_FLAGS, ...extraNodeArgs(),
    ...probe.args, CLI, 'node', 'run', '-c', config]
  const started = processes.start(`node proxy of ${options.device} (${options.apps.length} apps)`, command, args, probe.env)
  await until(`the node proxy of ${options.device} serving ${options.apps.length} apps`, async () => {
    const ready = await readyApps(devices, options.device)
    return options.apps.every(app => ready.includes(app))
  }, 120_000, processes)
  return { started, pid: started.pid, memoryFile }
}
