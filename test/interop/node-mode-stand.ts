/**
 * Node mode on real network namespaces, for the node-mode-*.interop.ts tests: app namespaces on a bridge (one device),
 * each running an unchanged app (REPORTER: answers with the X-Forwarded-Client-Cert it got) as a uid of its own;
 * an agent serving the Delegated Identity API (node-mode-identity.ts: Chaperone's, or a real SPIRE agent), with one
 * entry per app by uid and the node proxy (uid 0) its authorized delegate; and `chaperone node run` in the root
 * namespace (the device's, where the bridge is), restartable and killable. Not a test itself.
 */
import type { Test } from 'tap'
import type { ChildProcess, ChildProcessWithoutNullStreams } from 'node:child_process'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { removeGuard } from '../../node/network-guard'
import { freePort } from '../../bench/proxy/processes'
import { CLI_BIN } from '../helpers/cli'
import { waitFor } from '../helpers/command'
import { createTopology } from '../helpers/netns'
import type { Topology } from '../helpers/netns'
import { NODE_APP, REPORTER } from './fleet-netns-stand'
import type { DelegatedIdentityProvider, StartProvider } from './node-mode-identity'

export const TRUST_DOMAIN = 'plant.example'
export const NODE_ID = `spiffe://${TRUST_DOMAIN}/node-proxy`
export const TUNNEL_PORT = 15008
const FIRST_APP_UID = 5100

export interface AppStatus { name: string, state: string, spiffeId?: string, pid?: number, missing: string[], ready: boolean }

export interface NodeModeStand {
  readonly topology: Topology
  readonly dir: string
  /** The agent the node proxy takes its identities from. */
  readonly identity: DelegatedIdentityProvider
  readonly configFile: string
  /** Registers the node proxy (uid 0) and the apps of `withEntries` (each by its uid); resolves once the agent issues them. */
  register: () => Promise<void>
  /** The app's SPIFFE ID (`spiffe://plant.example/apps/<host>`). */
  idOf: (host: string) => string
  address: (host: string) => string
  /** Starts the host's app as its own uid; waits until it answers inside its namespace. */
  startApp: (host: string) => Promise<void>
  /** Stops the host's app (SIGKILL). */
  stopApp: (host: string) => Promise<void>
  /**
   * Writes the node configuration serving `hosts` (readyTimeout short: an app without an entry fails fast), with the
   * top-level `lines` added, and `apps[host]`'s fields (YAML flow) added to that app's.
   */
  writeConfig: (hosts: readonly string[], extra?: { lines?: readonly string[], apps?: Readonly<Record<string, string>> }) => void
  /** Starts `chaperone node run`; resolves once it printed that it runs. */
  startNode: () => Promise<void>
  /** SIGKILL (no drain, nothing cleaned) or SIGTERM; resolves once it exited. */
  stopNode: (signal: 'SIGKILL' | 'SIGTERM') => Promise<void>
  /** The node proxy's JSON log lines so far. */
  nodeLogs: () => Array<Record<string, unknown>>
  status: () => Promise<AppStatus[]>
  /** Waits until these apps are served and ready. */
  waitServed: (hosts: readonly string[], ms?: number) => Promise<void>
  /** curl from `from`'s namespace as its app's uid: the HTTP code ('000': no answer), the body and curl's stderr. */
  call: (from: string, to: string, path?: string, method?: string, headers?: readonly string[], port?: number) => Promise<{ code: string, body: string, stderr: string }>
}

export interface NodeModeStandOptions {
  /** The topology's name prefix (a few letters): its namespaces, links and bridge are named after it. */
  prefix: string
  hosts: string[]
  policy: string
  /** The hosts whose apps are registered (by their uid); the others' apps have no entry. */
  withEntries: readonly string[]
  /** The agent serving the Delegated Identity API. */
  identity: StartProvider
}

/** Starts the agent and the topology (nothing registered yet); everything is removed when `t` ends. */
export async function startNodeModeStand (t: Test, options: NodeModeStandOptions): Promise<NodeModeStand> {
  const { hosts } = options
  // Started first: teardowns run last-in first-out, so the agent outlives the node proxy.
  const identity = await options.identity(t, { trustDomain: TRUST_DOMAIN, delegates: [NODE_ID] })
  const topology = await createTopology({ prefix: options.prefix, hosts })
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-node-mode-'))
  chmodSync(dir, 0o755)
  const policyFile = join(dir, 'policy.yaml')
  writeFileSync(policyFile, options.policy, { mode: 0o644 })
  const adminPort = await freePort()
  const uidOf = (host: string): number => FIRST_APP_UID + hosts.indexOf(host)
  const idOf = (host: string): string => `spiffe://${TRUST_DOMAIN}/apps/${host}`
  const configFile = join(dir, 'node.yaml')
  let node: ChildProcessWithoutNullStreams | undefined
  let stderr = ''
  const stopNode = async (signal: 'SIGKILL' | 'SIGTERM'): Promise<void> => {
    if (node === undefined || node.exitCode !== null || node.signalCode !== null) return
    const exited = once(node, 'exit')
    node.kill(signal)
    await exited
  }
  const guard = { bridge: topology.bridge, tunnelPort: TUNNEL_PORT }
  t.teardown(async () => {
    await stopNode('SIGTERM')
    if (!t.passing()) t.comment(`the node proxy's last log lines:\n${stderr.split('\n').slice(-80).join('\n')}`)
    removeGuard(guard)
    await topology.destroy()
    rmSync(dir, { recursive: true, force: true })
  })
  const address = (host: string): string => topology.hosts[host].address
  const apps = new Map<string, ChildProcess>()
  const status = async (): Promise<AppStatus[]> => {
    const answer = await fetch(`http://127.0.0.1:${adminPort}/status`)
    return ((await answer.json()) as { apps: AppStatus[] }).apps
  }
  return {
    topology,
    dir,
    identity,
    configFile,
    register: async () => { await identity.register([{ spiffeId: NODE_ID, uid: 0 }, ...options.withEntries.map(host => ({ spiffeId: idOf(host), uid: uidOf(host) }))]) },
    idOf,
    address,
    startApp: async host => {
      apps.set(host, topology.spawn(host, NODE_APP[0], [...NODE_APP.slice(1), '-e', REPORTER], { uid: uidOf(host), stdio: 'ignore' }))
      await waitFor(`${host}'s app to answer`, 10_000, async () =>
        (await topology.exec(host, 'curl', ['-sf', '-m', '2', 'http://127.0.0.1:8080/'])).status === 0 ? true : undefined)
    },
    stopApp: async host => {
      const app = apps.get(host)
      if (app === undefined || app.exitCode !== null || app.signalCode !== null) return
      const exited = once(app, 'exit')
      app.kill('SIGKILL')
      await exited
    },
    writeConfig: (apps, extra = {}) => {
      const fields = (host: string): string => extra.apps?.[host] === undefined ? '' : `, ${extra.apps[host]}`
      writeFileSync(configFile, [
        `delegatedIdentityApi: ${identity.delegatedIdentityApi}`, `policy: ${policyFile}`, `admin: 127.0.0.1:${adminPort}`, 'logLevel: info',
        'readyTimeout: 5s', 'httpPorts: [8080]', `appNetworks: ["${topology.subnet}"]`, `guard: { bridges: [${topology.bridge}] }`, ...extra.lines ?? [],
        'apps:', ...apps.map(host => `  - { name: ${host}, netns: /var/run/netns/${topology.hosts[host].ns}${fields(host)} }`), ''
      ].join('\n'))
    },
    startNode: async () => {
      const child = node = spawn(process.execPath, [CLI_BIN, 'node', 'run', '-c', configFile], { stdio: 'pipe' })
      let stdout = ''
      child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s })
      child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s })
      await waitFor('the node proxy to start', 30_000, async () => {
        if (child.exitCode !== null) throw new Error(`the node proxy exited ${child.exitCode}: ${stderr.slice(-3000)}`)
        return stdout.includes('node proxy running') ? true : undefined
      })
    },
    stopNode,
    nodeLogs: () => stderr.split('\n').filter(line => line.startsWith('{')).map(line => JSON.parse(line) as Record<string, unknown>),
    status,
    waitServed: async (apps, ms = 30_000) => {
      await waitFor(`${apps.join(', ')} to be served`, ms, async () => {
        const served = await status().catch(() => [])
        return apps.every(host => served.some(app => app.name === host && app.ready)) ? true : undefined
      })
    },
    call: async (from, to, path = '/', method = 'GET', headers = [], port = 8080) => {
      const args = ['-sS', '-m', '5', '-X', method, ...headers.flatMap(header => ['-H', header]), '-w', '\n%{http_code}', `http://${address(to)}:${port}${path}`]
      const result = await topology.exec(from, 'curl', args, { uid: uidOf(from), timeoutMs: 15_000 })
      const lines = result.stdout.split('\n')
      return { code: lines.pop() ?? '', body: lines.join('\n'), stderr: result.stderr }
    }
  }
}
