/**
 * What runs on the benchmark's devices besides the node proxies: one agent (in the root namespace; its sockets are
 * files, which the processes of every namespace reach), an entry per uid, the policy, the apps (an nginx backend on
 * an HTTP-mode and a TCP-mode port, or an idle process), each as a uid of its own, and sidecars in transparent mode
 * inside app namespaces (`proxy init-iptables` then `proxy run`, as a uid of their own, exempt from the redirect).
 */
import { randomBytes } from 'node:crypto'
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { AdminClient } from '../../agent/admin/client'
import { bodyFile, nginxBackend } from '../proxy/configs'
import { execText, waitForOutput } from '../proxy/processes'
import type { Processes } from '../proxy/processes'
import type { Devices } from './devices'
import { probed } from './memory'
import type { ProbedProcess } from './memory'

export const TRUST_DOMAIN = 'bench.example'
export const NODE_PROXY_ID = `spiffe://${TRUST_DOMAIN}/node-proxy`
export const appId = (app: string): string => `spiffe://${TRUST_DOMAIN}/apps/${app}`
/** The apps' two ports: one the proxies treat as HTTP (httpPorts, --transparent-http-ports), one as TCP. */
export const PORTS = { http: 8080, tcp: 9090 } as const
export const CLI = join(__dirname, '..', '..', 'cli', 'main.js')
/** Node's flags as the image gives them (NODE_OPTIONS in the Dockerfile), for sidecars and node proxies alike. */
export const NODE_FLAGS = ['--max-semi-space-size=1']
/** BENCH_NODE_PROXY_ARGS: more node options for every sidecar and node proxy, e.g. "--cpu-prof --cpu-prof-dir=DIR". */
export const extraNodeArgs = (env: NodeJS.ProcessEnv = process.env): string[] => (env.BENCH_NODE_PROXY_ARGS ?? '').split(' ').filter(arg => arg !== '')

/** Every app may call every app: the benchmark measures the hop, with one rule to decide (JSON is YAML too). */
const POLICY = JSON.stringify({
  version: 1, defaultAction: 'deny', rules: [{ name: 'apps-call-apps', from: [appId('*')], to: [appId('*')], action: 'allow' }]
}, null, 2)

export interface AgentSockets { readonly workload: string, readonly delegated: string, readonly policyFile: string }

/** A registration entry: the SPIFFE ID a uid gets. */
export interface Entry { readonly id: string, readonly uid: number }

/** Starts the agent with the node proxy (uid 0) as its authorized delegate, and registers `entries`. */
export async function startAgent (dir: string, processes: Processes, entries: readonly Entry[]): Promise<AgentSockets> {
  const agentDir = join(dir, 'agent')
  mkdirSync(agentDir, { recursive: true })
  chmodSync(agentDir, 0o755)
  const sockets = { workload: join(agentDir, 'workload.sock'), delegated: join(agentDir, 'delegated.sock'), admin: join(agentDir, 'admin.sock') }
  const config = join(agentDir, 'agent.yaml')
  writeFileSync(config, [`trustDomain: ${TRUST_DOMAIN}`, `dataDir: ${join(agentDir, 'data')}`, `socket: ${sockets.workload}`, `adminSocket: ${sockets.admin}`,
    `serverSocket: ${join(agentDir, 'server.sock')}`, `authorizedDelegates: [${NODE_PROXY_ID}]`, `delegatedIdentitySocket: ${sockets.delegated}`, ''].join('\n'))
  const agent = processes.start('chaperone agent', process.execPath, [CLI, 'agent', 'run', '-c', config, '--log-level', 'warn'])
  await waitForOutput(agent, out => out.includes('data directory'), 'the agent')
  const admin = new AdminClient(sockets.admin)
  try {
    for (const entry of [{ id: NODE_PROXY_ID, uid: 0 }, ...entries]) await admin.createEntry({ spiffe_id: entry.id, parent_id: '', selectors: [`unix:uid:${entry.uid}`] })
  } finally {
    admin.close()
  }
  const policyFile = join(dir, 'policy.yaml')
  writeFileSync(policyFile, POLICY, { mode: 0o644 })
  return { workload: sockets.workload, delegated: sockets.delegated, policyFile }
}

/** Polls `check` until it holds; fails with `what` after `timeoutMs`. */
export async function until (what: string, check: () => Promise<boolean>, timeoutMs: number, processes: Processes): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await check()) {
    processes.assertRunning()
    if (Date.now() > deadline) throw new Error(`${what}: not after ${timeoutMs / 1000} s`)
    await new Promise(resolve => setTimeout(resolve, 250))
  }
}

/** curl inside a namespace; true on a 2xx answer. */
export async function answers (devices: Devices, ns: string, url: string): Promise<boolean> {
  try {
    const [command, ...args] = [...devices.launcher(ns), 'curl', '-sf', '-m', '2', '-o', '/dev/null', url]
    await execText(command, args)
    return true
  } catch {
    return false
  }
}

/**
 * An nginx backend (one worker, as the proxy benchmark's) as the app of `app`'s namespace, run as `uid`, on loopback
 * ports PORTS.http and PORTS.tcp: only what a proxy forwards inside the namespace reaches it.
 */
export async function startBackendApp (devices: Devices, processes: Processes, dir: string, app: string, uid: number): Promise<void> {
  const appDir = join(dir, `app-${app}`)
  mkdirSync(dirname(bodyFile(appDir)), { recursive: true })
  writeFileSync(bodyFile(appDir), randomBytes(2 ** 20))
  chmodSync(appDir, 0o777)
  const config = join(appDir, 'nginx.conf')
  // No holder here (the connection audit is the proxy benchmark's): its location points at a port nothing serves.
  writeFileSync(config, nginxBackend(appDir, PORTS.http, 9, [PORTS.tcp]))
  const { ns } = devices.apps[app]
  const [command, ...args] = [...devices.launcher(ns, uid), 'nginx', '-p', appDir, '-e', join(appDir, 'startup.err'), '-c', config]
  processes.start(`nginx in ${app}`, command, args)
  await until(`nginx in ${app} answering`, async () => await answers(devices, ns, `http://127.0.0.1:${PORTS.http}/`), 10_000, processes)
}

/** An app that only holds its namespace (node mode attests a process in it), as `uid`. */
export function startIdleApp (devices: Devices, processes: Processes, app: string, uid: number): void {
  const [command, ...args] = [...devices.launcher(devices.apps[app].ns, uid), 'sleep', 'infinity']
  processes.start(`idle app ${app}`, command, args)
}

/**
 * A sidecar in transparent mode in `app`'s namespace, as `uid` (exempt from the redirect, with its own entry):
 * outbound on 15001, inbound on 15006, PORTS.http as HTTP; with the memory probe, as node proxies. Resolves once it serves.
 */
export async function startTransparentSidecar (devices: Devices, processes: Processes, dir: string, agent: AgentSockets, app: string, uid: number): Promise<ProbedProcess> {
  const { ns } = devices.apps[app]
  const [init, ...initArgs] = [...devices.launcher(ns), process.execPath, CLI, 'proxy', 'init-iptables', '--proxy-uid', String(uid)]
  await execText(init, initArgs)
  const sidecarDir = join(dir, `sidecar-${app}`)
  mkdirSync(sidecarDir)
  chmodSync(sidecarDir, 0o777)
  const memoryFile = join(sidecarDir, 'memory.json')
  const probe = probed(memoryFile)
  const [command, ...args] = [...devices.launcher(ns, uid), process.execPath, ...NODE_FLAGS, ...extraNodeArgs(), ...probe.args, CLI, 'proxy', 'run',
    '--workload-api', `unix://${agent.workload}`, '--spiffe-id', appId(app), '--policy', agent.policyFile, '--admin', '127.0.0.1:15000',
    '--log-level', 'warn', '--transparent-outbound', '15001', '--transparent-inbound', '15006', '--transparent-http-ports', String(PORTS.http)]
  const sidecar = processes.start(`sidecar in ${app}`, command, args, probe.env)
  await waitForOutput(sidecar, text => /^ {2}admin +\S+$/m.test(text), `the sidecar in ${app}`)
  return { pid: sidecar.pid, memoryFile }
}
