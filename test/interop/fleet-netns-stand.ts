/**
 * Chaperone devices on real network namespaces, one namespace per machine, for the fleet interop tests
 * (fleet-netns-*.interop.ts): each device runs `chaperone agent run` with `upstream:` (attesting with its birth
 * certificate across the bridge), a sidecar in transparent mode (`proxy init-iptables` + `proxy run`, as root, so the
 * agent's own connections to the upstream leave unredirected) and an unchanged app (a node script as nobody). The
 * upstream — a real SPIRE server or a Chaperone fleet agent — sits in a namespace of its own, behind `FleetUpstream`.
 * Processes log to memory; everything is stopped and removed when the test ends. Not a test itself.
 */
import type { Test } from 'tap'
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { BirthCert } from '../../certs-test'
import { birthCredential, x509popAgentId } from '../../agent/upstream'
import { parseTrustDomain } from '../../spiffe/id'
import { CLI_BIN, CLI_SKIP, runCli } from '../helpers/cli'
import { must, run, waitFor } from '../helpers/command'
import { CURL_MISSING, IPTABLES_MISSING, NETNS_SKIP, SETPRIV_MISSING, TCPDUMP_MISSING, createTopology } from '../helpers/netns'
import type { Topology } from '../helpers/netns'
import { interopSkip, spireAgent, spireServer } from './peers'
import { stopChild } from './spire-process'

export const TD = parseTrustDomain('fleet.example')
export const APP_UID = 65534
export const AUDIENCE = 'fleet-app'
/** What a namespace test of our own programs needs (no peer built with Go). */
export const skipOwnNetns = (): string | false => CLI_SKIP || NETNS_SKIP || IPTABLES_MISSING || SETPRIV_MISSING || CURL_MISSING || TCPDUMP_MISSING
export const skipFleetNetns = (): string | false => skipOwnNetns() || interopSkip()
/** An app's node: started in /, without the test runner's NODE_OPTIONS hooks. */
export const NODE_APP = ['env', '--chdir=/', '-u', 'NODE_OPTIONS', process.execPath] as const
/** A small HTTP server, as an unchanged app: answers with the X-Forwarded-Client-Cert it received. */
export const REPORTER = 'require("http").createServer((q, s) => s.end("caller=" + (q.headers["x-forwarded-client-cert"] || "none"))).listen(8080, "0.0.0.0")'

export const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/** A long-running process in a namespace (restartable, same arguments), its output kept; its JSON log lines parsed. */
export class NetnsProcess {
  stdout = ''
  stderr = ''
  #child: ChildProcess | undefined

  constructor (readonly topology: Topology, readonly host: string, readonly args: readonly string[], readonly label: string) {}

  get running (): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null
  }

  start (): ChildProcess {
    const child = this.topology.spawn(this.host, process.execPath, [CLI_BIN, ...this.args])
    this.#child = child
    child.stdout.setEncoding('utf8').on('data', (s: string) => { this.stdout += s })
    child.stderr.setEncoding('utf8').on('data', (s: string) => { this.stderr += s })
    return child
  }

  /** Starts it and waits until stdout says `ready`; rejects with its stderr if it exits first. */
  async startUntil (ready: string, ms = 60_000): Promise<void> {
    const stdoutAt = this.stdout.length
    const child = this.start()
    const exited = once(child, 'exit')
    await waitFor(`${this.label} to print "${ready}"`, ms, async () => {
      if (this.stdout.slice(stdoutAt).includes(ready)) return true
      if (child.exitCode !== null || child.signalCode !== null) {
        await exited
        throw new Error(`${this.label} exited (${String(child.exitCode ?? child.signalCode)}): ${this.stderr.slice(-3000)}`)
      }
      return undefined
    })
  }

  /** SIGTERM; resolves once it exited. */
  async stop (): Promise<void> {
    if (this.#child !== undefined && this.running) await stopChild(this.#child)
  }

  logs (): Array<Record<string, unknown>> {
    return this.stderr.split('\n').filter(line => line.startsWith('{')).map(line => {
      try { return JSON.parse(line) as Record<string, unknown> } catch { return {} }
    })
  }
}

/** The upstream the devices attest to: a SPIRE server, or a Chaperone agent with `fleet:`. */
export interface FleetUpstream {
  readonly name: string
  /** `host:port` on the bridge, where devices attest. */
  readonly address: string
  bundlePem: () => Promise<string>
  /** Registers the device holding `birth` (downstream entry on its x509pop agent ID); its SPIFFE ID. */
  registerDevice: (birth: BirthCert) => Promise<string>
  stop: () => Promise<void>
  start: () => Promise<void>
  logs: () => string
}

export interface Device {
  readonly host: string
  readonly serial: string
  readonly dir: string
  readonly socket: string
  readonly adminSocket: string
  /** `spiffe://fleet.example/device/<serial>`, and its app's ID `<deviceId>/app`. */
  readonly deviceId: string
  readonly appId: string
  readonly agentId: string
  readonly agent: NetnsProcess
  sidecar?: NetnsProcess
}

/** A device's upstream and lifetimes; registered there unless `register` is false. */
export interface DeviceOptions { upstream: FleetUpstream, caTtl: string, x509Ttl: string, register?: boolean }

export interface FleetNetnsStand {
  readonly topology: Topology
  readonly dir: string
  readonly policy: string
  address: (host: string) => string
  /** A CLI process (`chaperone ARGS`) in `host`, stopped when the test ends; not started yet. */
  process: (host: string, args: string[], label: string) => NetnsProcess
  /** Writes a device's files and agent config (ca.ttl, svid.x509Ttl) in `host`; registers it when `register`. */
  device: (host: string, birth: BirthCert, options: DeviceOptions) => Promise<Device>
  /**
   * Starts a device's agent; retries while the upstream does not know its entry yet (SPIRE caches entries 5 s).
   * Resolves with undefined once running, or with the agent's stderr when it exited (a refusal).
   */
  startAgent: (device: Device) => Promise<string | undefined>
  /** The app's entry on the device, its sidecar (transparent) and its app (reporting XFCC on :8080). */
  startWorkload: (device: Device) => Promise<void>
  /** `curl` as the app in `host` (new connection): HTTP status and body. */
  curl: (host: string, url: string, method?: string) => Promise<{ code: string, body: string, stderr: string }>
  /** `spire-agent api` against a Workload API socket. */
  api: (socket: string, args: string[]) => Promise<{ status: number | null, stdout: string, stderr: string }>
}

export async function startFleetNetnsStand (t: Test, prefix: string, hosts: string[], policy: string): Promise<FleetNetnsStand> {
  const topology = await createTopology({ prefix, hosts })
  const dir = mkdtempSync('/tmp/fnns-')
  chmodSync(dir, 0o755)
  const processes: NetnsProcess[] = []
  t.teardown(async () => {
    for (const p of processes) await p.stop()
    if (!t.passing()) for (const p of processes) t.comment(`${p.label}'s last log lines:\n${p.stderr.split('\n').slice(-40).join('\n')}`)
    await topology.destroy()
    rmSync(dir, { recursive: true, force: true })
  })
  const policyFile = join(dir, 'policy.yaml')
  writeFileSync(policyFile, policy, { mode: 0o644 })
  const agentBinary = await spireAgent()

  return {
    topology,
    dir,
    policy: policyFile,
    address: host => topology.hosts[host].address,
    process: (host, args, label) => {
      const p = new NetnsProcess(topology, host, args, label)
      processes.push(p)
      return p
    },
    device: async (host, birth, { upstream, caTtl, x509Ttl, register = true }) => {
      const ddir = join(dir, `${host}-${birth.serial}`)
      rmSync(ddir, { recursive: true, force: true })
      mkdirSync(join(ddir, 'birth'), { recursive: true, mode: 0o700 })
      chmodSync(ddir, 0o755)
      writeFileSync(join(ddir, 'birth', 'cert.pem'), birth.chainPem)
      writeFileSync(join(ddir, 'birth', 'key.pem'), birth.keyPem, { mode: 0o600 })
      writeFileSync(join(ddir, 'upstream-bundle.pem'), await upstream.bundlePem())
      const socket = join(ddir, 'workload.sock')
      const adminSocket = join(ddir, 'admin.sock')
      writeFileSync(join(ddir, 'agent.yaml'), [
        `trustDomain: ${TD.name}`,
        `dataDir: ${join(ddir, 'data')}`,
        `socket: ${socket}`,
        `adminSocket: ${adminSocket}`,
        `serverSocket: ${join(ddir, 'server', 'api.sock')}`,
        `ca: { ttl: ${caTtl} }`,
        `svid: { x509Ttl: ${x509Ttl} }`,
        'upstream:',
        `  address: ${upstream.address}`,
        `  trustBundleFile: ${join(ddir, 'upstream-bundle.pem')}`,
        `  x509pop: { certFile: ${join(ddir, 'birth', 'cert.pem')}, keyFile: ${join(ddir, 'birth', 'key.pem')} }`,
        '  timeout: 5s',
        ''
      ].join('\n'))
      const deviceId = register ? await upstream.registerDevice(birth) : `spiffe://${TD.name}/device/${birth.serial}`
      const agent = new NetnsProcess(topology, host, ['agent', 'run', '-c', join(ddir, 'agent.yaml'), '--log-level', 'info'], `${host} agent (${birth.serial})`)
      processes.push(agent)
      return {
        host,
        serial: birth.serial,
        dir: ddir,
        socket,
        adminSocket,
        deviceId,
        appId: `${deviceId}/app`,
        agentId: x509popAgentId(TD, birthCredential(birth.chain, birth.key)).toString(),
        agent
      }
    },
    startAgent: async device => {
      for (let tries = 0; ; tries++) {
        try {
          await device.agent.startUntil('chaperone agent running')
          return undefined
        } catch (err) {
          if (device.agent.running) throw err
          // The CLI prints the message of ERR_DOWNSTREAM_ENTRY_MISSING, not its code.
          if (!/ERR_DOWNSTREAM_ENTRY_MISSING|no downstream entry is authorized/.test(device.agent.stderr) || tries > 20) return device.agent.stderr
          device.agent.stderr = ''
          await sleep(1000)
        }
      }
    },
    startWorkload: async device => {
      const created = await runCli(['entry', 'create', '--admin-socket', device.adminSocket, '--spiffe-id', device.appId, '--selector', 'unix:uid:0'])
      if (created.status !== 0) throw new Error(`chaperone entry create on ${device.host}: ${created.stderr}`)
      const init = await topology.exec(device.host, process.execPath, [CLI_BIN, 'proxy', 'init-iptables', '--proxy-uid', '0'])
      if (init.status !== 0) throw new Error(`init-iptables in ${device.host}: ${init.stderr}`)
      // As root, like the agent: uid 0 is exempt from the redirect, so the agent reaches its upstream directly.
      const sidecar = new NetnsProcess(topology, device.host, ['proxy', 'run', '--workload-api', `unix://${device.socket}`, '--policy', policyFile,
        '--spiffe-id', device.appId, '--transparent-outbound', '15001', '--transparent-inbound', '15006', '--transparent-http-ports', '8080', '--log-level', 'info'],
      `${device.host} sidecar`)
      processes.push(sidecar)
      device.sidecar = sidecar
      await sidecar.startUntil('admin')
      topology.spawn(device.host, NODE_APP[0], [...NODE_APP.slice(1), '-e', REPORTER], { uid: APP_UID, stdio: 'ignore' })
      await waitFor(`${device.host}'s app to listen`, 10_000, async () => {
        const ss = await topology.exec(device.host, 'ss', ['-ltn', 'sport = :8080'])
        return ss.stdout.includes(':8080') ? true : undefined
      })
    },
    curl: async (host, url, method = 'GET') => {
      const result = await topology.exec(host, 'curl', ['-sS', '-m', '5', '-X', method, '-w', '\n%{http_code}', url], { uid: APP_UID, timeoutMs: 15_000 })
      const lines = result.stdout.split('\n')
      return { code: lines.at(-1) ?? '', body: lines.slice(0, -1).join('\n'), stderr: result.stderr }
    },
    api: async (socket, args) => await run(agentBinary, ['api', ...args, '-socketPath', socket], { timeoutMs: 30_000 })
  }
}

/** `spire-server ARGS -socketPath SOCKET` for a Chaperone agent's SPIRE server API: its stdout. */
export async function spireServerCli (socket: string, args: string[]): Promise<string> {
  return await must(await spireServer(), [...args, '-socketPath', socket], { timeoutMs: 30_000 })
}
