/**
 * What the namespace harness (netns.ts) needs from the machine: the tools' paths, one probe of whether network
 * namespaces can be made here, and tap `skip` reasons for each missing piece. Not a test itself.
 */
import { execFile, spawnSync } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'
import { randomBytes } from 'node:crypto'

/** Absolute path of an executable on PATH or in an sbin folder (a non-login root shell may lack those), or undefined. */
export function findTool (name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/local/sbin', '/usr/sbin', '/sbin']
  for (const dir of dirs) {
    try {
      accessSync(join(dir, name), constants.X_OK)
      return join(dir, name)
    } catch { /* not in this folder */ }
  }
  return undefined
}

export const IP = findTool('ip')
export const IPTABLES = findTool('iptables')
export const TCPDUMP = findTool('tcpdump')
export const SETPRIV = findTool('setpriv')

export interface RunResult { status: number | null, stdout: string, stderr: string }

/** Runs a command to completion, synchronously (for probes and the exit-time sweep); never throws. */
export function runSync (cmd: string, args: readonly string[]): RunResult {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 })
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.error?.message ?? r.stderr ?? '' }
}

/** `ip …`, resolving with stdout; rejects with the command line and ip's own message. */
export async function ip (...args: string[]): Promise<string> {
  return await new Promise((resolve, reject) => {
    execFile(IP ?? 'ip', args, { encoding: 'utf8', timeout: 10_000 }, (error, stdout, stderr) => {
      if (error === null) resolve(stdout)
      else reject(new Error(`ip ${args.join(' ')} failed: ${stderr.trim() || error.message}`))
    })
  })
}

/** Names of the network namespaces `ip netns` knows. */
export function listNamespaces (): string[] {
  const out = runSync(IP ?? 'ip', ['-j', 'netns', 'list']).stdout.trim()
  return out === '' ? [] : (JSON.parse(out) as Array<{ name: string }>).map(ns => ns.name)
}

/** Names of the links in the root namespace. */
export function listLinks (): string[] {
  const out = runSync(IP ?? 'ip', ['-j', 'link', 'show']).stdout.trim()
  return out === '' ? [] : (JSON.parse(out) as Array<{ ifname: string }>).map(link => link.ifname)
}

interface Probe { netns: string | false, iptables: string | false }

/** Creates and deletes one throwaway namespace, checking on the way that iptables' nat table works inside it. */
function probe (): Probe {
  const iptablesMissing = IPTABLES === undefined ? 'iptables is not installed (apt-get install -y iptables)' : false
  if (process.getuid?.() !== 0) {
    return { netns: 'not root: network namespaces need root (CI runs the tests as root)', iptables: iptablesMissing }
  }
  if (IP === undefined) return { netns: 'ip (iproute2) is not installed (apt-get install -y iproute2)', iptables: iptablesMissing }
  const name = `chprobe-${randomBytes(4).toString('hex')}`
  const added = runSync(IP, ['netns', 'add', name])
  if (added.status !== 0) {
    return { netns: `cannot create a network namespace here: ${added.stderr.trim()}`, iptables: iptablesMissing }
  }
  let iptables = iptablesMissing
  if (IPTABLES !== undefined) {
    const nat = runSync(IP, ['netns', 'exec', name, IPTABLES, '-t', 'nat', '-S'])
    if (nat.status !== 0) iptables = `iptables' nat table does not work in a namespace here: ${nat.stderr.trim()}`
  }
  runSync(IP, ['netns', 'delete', name])
  return { netns: false, iptables }
}

const probed = probe()

/** A tap `skip` value: why namespace tests cannot run here (not root, no iproute2, namespaces refused), or false. */
export const NETNS_SKIP: string | false = probed.netns
/** Why iptables (nat inside a namespace) is unavailable, or false. */
export const IPTABLES_MISSING: string | false = probed.iptables
export const TCPDUMP_MISSING: string | false = TCPDUMP === undefined
  ? 'tcpdump is not installed (apt-get install -y tcpdump)'
  : false
export const CURL_MISSING: string | false = findTool('curl') === undefined
  ? 'curl is not installed (apt-get install -y curl)'
  : false
export const SETPRIV_MISSING: string | false = SETPRIV === undefined
  ? 'setpriv (util-linux) is not installed: processes cannot run as another user'
  : false
