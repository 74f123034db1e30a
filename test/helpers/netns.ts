/**
 * End-to-end test topologies on real network namespaces (not a test itself: tap runs only *.test.ts):
 *
 *   root namespace:  bridge <run>br  198.18.N.1/24        (no other change to the root namespace, see rootRulesNeeded)
 *                      │ <run>h0          │ <run>h1 …
 *   namespace <run>-<host>:  eth0 198.18.N.10, .11 …, lo up, default route via 198.18.N.1
 *
 * 198.18.N stands for a /24 of the benchmarking range 198.18.0.0/15 (198.18.0.0 to 198.19.255.0) that no
 * root-namespace address uses, so parallel test files get separate subnets. Hosts talk at layer 2 over the bridge; the root namespace reaches them over the bridge's
 * connected route and forwards nothing. Commands run inside a host through `ip netns exec`, as another user through
 * setpriv after entering (node's own uid option would drop root before `ip` could enter the namespace).
 * `destroy()` (idempotent), an exit/signal hook and `cleanupStale` remove everything; see netns-cleanup.ts.
 */
import { spawn as spawnChild } from 'node:child_process'
import type { ChildProcess, ChildProcessWithoutNullStreams, StdioOptions } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { IP, SETPRIV, SETPRIV_MISSING, TCPDUMP, TCPDUMP_MISSING, NETNS_SKIP, ip, runSync } from './netns-tools'
import {
  addRootRules, checkPrefix, claimRun, cleanupStale, release, rootRulesNeeded, runDir, sweepOnExit, sweepSync
} from './netns-cleanup'

export { CURL_MISSING, IPTABLES_MISSING, NETNS_SKIP, SETPRIV_MISSING, TCPDUMP_MISSING } from './netns-tools'
export { cleanupStale } from './netns-cleanup'

export interface TopologyOptions {
  /** 1–6 lowercase letters or digits, starting with a letter; names this test's runs (and its cleanupStale). */
  prefix: string
  /** Host names: lowercase letters, digits and dashes, starting with a letter. */
  hosts: string[]
}

export interface NetnsHost {
  readonly ns: string
  readonly address: string
  /** The root-namespace end of the host's veth pair, a port of the bridge. */
  readonly veth: string
}

export interface RunAs {
  /** Run as this user (real, effective and saved uid), with gid `gid ?? uid` and no supplementary groups. */
  uid?: number
  gid?: number
  /** Added to (not replacing) this process's environment. */
  env?: NodeJS.ProcessEnv
}

export interface ExecOptions extends RunAs {
  input?: string | Buffer
  /** Kill the command's process group and reject after this long; default 30 s. */
  timeoutMs?: number
}

export interface ExecResult { status: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

export interface Capture {
  /** The pcap file tcpdump writes (inside the run's folder, removed with the topology). */
  readonly file: string
  /** Waits for the capture to go quiet, stops tcpdump and returns the pcap bytes; idempotent. */
  stop: () => Promise<Buffer>
}

export interface Topology {
  readonly run: string
  readonly hosts: Readonly<Record<string, NetnsHost>>
  readonly bridge: string
  readonly bridgeAddress: string
  /** e.g. '198.18.7.0/24' */
  readonly subnet: string
  /** Runs a command in `host` to completion; a non-zero status resolves, it does not reject. */
  exec: (host: string, cmd: string, args?: readonly string[], opts?: ExecOptions) => Promise<ExecResult>
  /**
   * Starts a command in `host` in its own process group, stdio piped unless `stdio` says otherwise (read or
   * resume a chatty process's pipes). It is killed by destroy() at the latest.
   */
  spawn: {
    (host: string, cmd: string, args?: readonly string[], opts?: RunAs): ChildProcessWithoutNullStreams
    (host: string, cmd: string, args: readonly string[], opts: RunAs & { stdio: StdioOptions }): ChildProcess
  }
  /** Starts tcpdump (BPF `filter`) on the bridge, or on `iface` (default eth0) inside `host`, once it listens. */
  capture: (filter?: string, opts?: { host?: string, iface?: string }) => Promise<Capture>
  /** Deletes `host`'s namespace and makes a new one with the same name and address (its processes are gone). */
  recreate: (host: string) => Promise<void>
  destroy: () => Promise<void>
}

const HOST = /^[a-z][a-z0-9-]{0,19}$/

/** A /24 of 198.18.0.0/15 that no root-namespace address is in, as its first three octets. */
function pickSubnet (): string {
  const used = new Set(
    (JSON.parse(runSync(IP ?? 'ip', ['-j', '-4', 'addr', 'show']).stdout || '[]') as Array<{ addr_info?: Array<{ local: string }> }>)
      .flatMap(link => (link.addr_info ?? []).map(a => a.local.split('.').slice(0, 3).join('.')))
  )
  const free = Array.from({ length: 512 }, (_, i) => `198.${18 + (i >> 8)}.${i & 255}`).filter(s => !used.has(s))
  const subnet = free[Math.floor(Math.random() * free.length)]
  if (subnet === undefined) throw new Error('every /24 of 198.18.0.0/15 is in use in the root namespace')
  return subnet
}

function killGroup (child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  try { process.kill(-child.pid, 'SIGKILL') } catch { /* exited meanwhile */ }
}

/** Resolves once `file` has stopped growing for 150 ms (tcpdump writes each packet as it comes), 2 s at most. */
async function quiet (file: string): Promise<void> {
  const size = (): number => { try { return statSync(file).size } catch { return -1 } }
  const deadline = Date.now() + 2000
  let last = size()
  let stable = 0
  while (stable < 3 && Date.now() < deadline) {
    await new Promise(resolve => setTimeout(resolve, 50))
    const now = size()
    stable = now === last ? stable + 1 : 0
    last = now
  }
}

/** Creates the bridge, the hosts' namespaces and veth pairs; on any failure removes what it made and rethrows. */
export async function createTopology (options: TopologyOptions): Promise<Topology> {
  if (NETNS_SKIP !== false) throw new Error(NETNS_SKIP)
  checkPrefix(options.prefix)
  const names = options.hosts
  if (names.length === 0 || names.length > 99) throw new Error('a topology needs 1 to 99 hosts')
  for (const name of names) if (!HOST.test(name)) throw new Error(`host name must match ${String(HOST)}: ${name}`)
  if (new Set(names).size !== names.length) throw new Error(`host names repeat: ${names.join(', ')}`)

  cleanupStale(options.prefix)
  const run = claimRun(options.prefix)
  const net = pickSubnet()
  const bridge = `${run}br`
  const bridgeAddress = `${net}.1`
  const hosts: Record<string, NetnsHost> = {}
  names.forEach((name, i) => { hosts[name] = { ns: `${run}-${name}`, address: `${net}.${10 + i}`, veth: `${run}h${i}` } })
  const parts = { namespaces: names.map(n => hosts[n].ns), links: [...names.map(n => hosts[n].veth), bridge] }
  const children = new Set<ChildProcess>()
  const sweep = (): void => {
    for (const child of children) killGroup(child)
    sweepSync(run, parts)
  }
  sweepOnExit(run, sweep)

  let destroyed: Promise<void> | undefined
  const destroy = async (): Promise<void> => {
    destroyed ??= (async () => {
      const exits = [...children].map(async child => {
        if (child.exitCode === null && child.signalCode === null) await once(child, 'exit').catch(() => undefined)
      })
      for (const child of children) killGroup(child)
      await Promise.race([Promise.all(exits), new Promise(resolve => setTimeout(resolve, 2000))])
      sweep()
      release(run)
    })()
    return await destroyed
  }

  const hostOf = (name: string): NetnsHost => {
    const host = hosts[name]
    if (host === undefined) throw new Error(`no host ${name} in topology ${run} (hosts: ${names.join(', ')})`)
    return host
  }

  function spawnTracked (cmd: string, args: readonly string[], env: NodeJS.ProcessEnv | undefined, stdio: StdioOptions): ChildProcess {
    if (destroyed !== undefined) throw new Error(`topology ${run} is destroyed`)
    const child = spawnChild(cmd, args, { detached: true, stdio, env: env === undefined ? process.env : { ...process.env, ...env } })
    children.add(child)
    child.once('exit', () => { children.delete(child) })
    return child
  }

  function spawnIn (host: string, cmd: string, args: readonly string[] = [], opts: RunAs & { stdio?: StdioOptions } = {}): ChildProcess {
    let argv = [cmd, ...args]
    if (opts.uid !== undefined || opts.gid !== undefined) {
      if (SETPRIV === undefined) throw new Error(String(SETPRIV_MISSING))
      const uid = opts.uid ?? 0
      argv = [SETPRIV, `--reuid=${uid}`, `--regid=${opts.gid ?? uid}`, '--clear-groups', '--', ...argv]
    }
    return spawnTracked(IP ?? 'ip', ['netns', 'exec', hostOf(host).ns, ...argv], opts.env, opts.stdio ?? 'pipe')
  }

  async function exec (host: string, cmd: string, args: readonly string[] = [], opts: ExecOptions = {}): Promise<ExecResult> {
    const child = spawnIn(host, cmd, args, opts) as ChildProcessWithoutNullStreams
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s })
    child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s })
    child.stdin.on('error', () => { /* the command may exit without reading its input */ })
    child.stdin.end(opts.input)
    const ms = opts.timeoutMs ?? 30_000
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        killGroup(child)
        reject(new Error(`${cmd} ${args.join(' ')} in ${host} timed out after ${ms} ms; stdout: ${stdout}; stderr: ${stderr}`))
      }, ms)
    })
    try {
      const [status, signal] = await Promise.race([once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>, timeout])
      return { status, signal, stdout, stderr }
    } finally {
      clearTimeout(timer)
    }
  }

  let captures = 0
  async function capture (filter = '', opts: { host?: string, iface?: string } = {}): Promise<Capture> {
    if (TCPDUMP === undefined) throw new Error(String(TCPDUMP_MISSING))
    const file = join(runDir(run), `capture-${captures++}.pcap`)
    // -U writes each packet at once, --immediate-mode hands it over at once, -Z root keeps tcpdump from switching
    // to a user that cannot write the run's folder
    const args = ['-i', opts.host === undefined ? bridge : opts.iface ?? 'eth0', '-w', file, '-U', '--immediate-mode',
      '-n', '-Z', 'root', ...(filter === '' ? [] : [filter])]
    const child = (opts.host === undefined
      ? spawnTracked(TCPDUMP, args, undefined, 'pipe')
      : spawnIn(opts.host, TCPDUMP, args)) as ChildProcessWithoutNullStreams
    let log = ''
    let timer: NodeJS.Timeout | undefined
    await new Promise<void>((resolve, reject) => {
      child.stderr.setEncoding('utf8').on('data', (s: string) => {
        log += s
        if (log.includes('listening on')) resolve()
      })
      child.once('exit', () => { reject(new Error(`tcpdump ${args.join(' ')} exited: ${log.trim()}`)) })
      timer = setTimeout(() => {
        killGroup(child)
        reject(new Error(`tcpdump ${args.join(' ')} did not start listening in 10 s: ${log.trim()}`))
      }, 10_000).unref()
    }).finally(() => { clearTimeout(timer) }) // listening: the capture runs until stop(), however long
    let stopped: Promise<Buffer> | undefined
    const stop = async (): Promise<Buffer> => {
      stopped ??= (async () => {
        await quiet(file)
        if (child.exitCode === null && child.signalCode === null) {
          const exited = once(child, 'exit')
          child.kill('SIGINT')
          await exited
        }
        return readFileSync(file)
      })()
      return await stopped
    }
    return { file, stop }
  }

  try {
    await ip('link', 'add', 'name', bridge, 'type', 'bridge')
    // addrgenmode none: no IPv6 link-local address, so no IPv6 chatter in captures
    await ip('link', 'set', 'dev', bridge, 'addrgenmode', 'none')
    await ip('addr', 'add', `${bridgeAddress}/24`, 'dev', bridge)
    await ip('link', 'set', 'dev', bridge, 'up')
    addRootRules(run, rootRulesNeeded(bridge))
    await Promise.all(names.map(addHost))
  } catch (error) {
    await destroy()
    throw error
  }

  async function addHost (name: string): Promise<void> {
    const { ns, address, veth } = hostOf(name)
    await ip('netns', 'add', ns)
    await ip('link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns)
    await ip('link', 'set', 'dev', veth, 'addrgenmode', 'none', 'master', bridge, 'up')
    await ip('-n', ns, 'link', 'set', 'dev', 'lo', 'up')
    // A MAC from the address, as Docker makes them: a host made anew is found at once, not after neighbours' caches expire.
    const mac = `02:42:${address.split('.').map(octet => Number(octet).toString(16).padStart(2, '0')).join(':')}`
    await ip('-n', ns, 'link', 'set', 'dev', 'eth0', 'addrgenmode', 'none', 'address', mac)
    await ip('-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0')
    await ip('-n', ns, 'link', 'set', 'dev', 'eth0', 'up')
    await ip('-n', ns, 'route', 'add', 'default', 'via', bridgeAddress)
  }

  /** A container restarted: the host's namespace deleted (its veth with it) and made anew, same name and address. */
  async function recreate (name: string): Promise<void> {
    await ip('netns', 'del', hostOf(name).ns)
    // Whoever still holds the old namespace keeps it, and its end of the veth: remove the pair from this end.
    await ip('link', 'del', hostOf(name).veth).catch(() => undefined)
    await addHost(name)
  }

  return {
    run, hosts, bridge, bridgeAddress, subnet: `${net}.0/24`, exec, capture, destroy, recreate,
    spawn: spawnIn as Topology['spawn']
  }
}
