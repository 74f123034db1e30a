/**
 * Teardown for the namespace harness (netns.ts): who owns a run, the synchronous sweep that deletes a run's
 * namespaces, links and root firewall rules, the exit and signal hooks that sweep what a crashing test leaves, and
 * `cleanupStale` for what a killed test left. Not a test itself.
 *
 * A run is `<prefix><4 hex digits>`; everything it makes is named after it (namespaces `<run>-<host>`, links
 * `<run>br` and `<run>h<i>`), and a file `<run>.owner` in STATE_DIR holds the owning process's pid and start time,
 * so a sweep never touches a run whose owner still lives (tap runs test files in parallel, one process each).
 */
import { linkSync, mkdirSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { IP, IPTABLES, listLinks, listNamespaces, runSync } from './netns-tools'

/** On tmpfs where there is a /run, so a reboot (which also drops every namespace) clears it too. */
export const STATE_DIR = existsSync('/run') ? '/run/chaperone-netns' : join(tmpdir(), 'chaperone-netns')

const PREFIX = /^[a-z][a-z0-9]{0,5}$/

/** Throws unless `prefix` keeps every link name within Linux's 15 characters and apart from real interfaces. */
export function checkPrefix (prefix: string): void {
  if (!PREFIX.test(prefix)) throw new Error(`netns prefix must match ${String(PREFIX)}, got ${JSON.stringify(prefix)}`)
}

/** The process's start time in clock ticks (field 22 of /proc/<pid>/stat), which a reused pid does not share. */
function startTime (pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}

function ownerFile (run: string): string { return join(STATE_DIR, `${run}.owner`) }

/** True while the process that claimed `run` is alive. */
function ownerAlive (run: string): boolean {
  try {
    const [pid, start] = readFileSync(ownerFile(run), 'utf8').trim().split(' ')
    return start !== undefined && startTime(Number(pid)) === start
  } catch {
    return false
  }
}

/**
 * Picks an unused run name and records this process as its owner. The owner file appears with its content in one
 * step (written aside, then hard-linked, which fails if the name is taken), so no sweep sees it half-written.
 */
export function claimRun (prefix: string): string {
  mkdirSync(STATE_DIR, { recursive: true, mode: 0o700 })
  const taken = [...listNamespaces(), ...listLinks()]
  for (let attempt = 0; attempt < 50; attempt++) {
    const run = `${prefix}${randomBytes(2).toString('hex')}`
    if (taken.some(name => name.startsWith(run))) continue
    const scratch = join(STATE_DIR, `.claim-${randomBytes(6).toString('hex')}`)
    writeFileSync(scratch, `${process.pid} ${startTime(process.pid)}\n`)
    try {
      linkSync(scratch, ownerFile(run))
      return run
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    } finally {
      unlinkSync(scratch)
    }
  }
  throw new Error(`no free netns run name with prefix ${prefix}`)
}

/** A folder for the run's files (captures), removed by its sweep. */
export function runDir (run: string): string {
  const dir = join(STATE_DIR, run)
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  return dir
}

const tag = (run: string): string => `chaperone-netns:${run}`

function forwardRules (): string[] {
  if (IPTABLES === undefined) return []
  return runSync(IPTABLES, ['-w', '-S', 'FORWARD']).stdout.split('\n').filter(line => line.includes('chaperone-netns:'))
}

function readSysctl (path: string): string {
  try { return readFileSync(path, 'utf8').trim() } catch { return '' }
}

/**
 * The root-namespace FORWARD rules a bridge needs on this machine, usually none: with br_netfilter on, bridged frames
 * cross the FORWARD chain (a Docker host's DROP policy would cut the hosts apart); with forwarding on, the hosts'
 * default route would let their packets out of the machine.
 */
export function rootRulesNeeded (bridge: string): string[][] {
  const rules: string[][] = []
  if (readSysctl('/proc/sys/net/bridge/bridge-nf-call-iptables') === '1' && IPTABLES !== undefined) {
    const chain = runSync(IPTABLES, ['-w', '-S', 'FORWARD']).stdout.trim().split('\n')
    if (chain.length > 1 || chain[0] !== '-P FORWARD ACCEPT') rules.push(['-i', bridge, '-o', bridge, '-j', 'ACCEPT'])
  }
  if (readSysctl('/proc/sys/net/ipv4/ip_forward') === '1') rules.push(['-i', bridge, '!', '-o', bridge, '-j', 'DROP'])
  return rules
}

/** Inserts `rules` at the head of FORWARD, each tagged with the run so its sweep (or a later one) can delete it. */
export function addRootRules (run: string, rules: string[][]): void {
  if (rules.length === 0) return
  if (IPTABLES === undefined) throw new Error('this machine forwards or filters bridged traffic, and iptables is missing to fence the test bridge')
  for (const rule of rules) {
    const r = runSync(IPTABLES, ['-w', '-I', 'FORWARD', '1', ...rule, '-m', 'comment', '--comment', tag(run)])
    if (r.status !== 0) throw new Error(`iptables -I FORWARD ${rule.join(' ')} failed: ${r.stderr.trim()}`)
  }
}

export interface RunParts { namespaces: string[], links: string[] }

/**
 * Deletes a run synchronously and without throwing: kills every process inside its namespaces, deletes its links
 * (a veth's deletion takes its namespace end along, at once) and namespaces, its FORWARD rules and its files.
 */
export function sweepSync (run: string, parts: RunParts, rules = forwardRules()): void {
  for (const ns of parts.namespaces) {
    for (const pid of runSync(IP ?? 'ip', ['netns', 'pids', ns]).stdout.split(/\s+/).filter(Boolean)) {
      try { process.kill(Number(pid), 'SIGKILL') } catch { /* gone already */ }
    }
  }
  for (const link of parts.links) runSync(IP ?? 'ip', ['link', 'delete', link])
  for (const ns of parts.namespaces) runSync(IP ?? 'ip', ['netns', 'delete', ns])
  for (const line of rules.filter(line => line.includes(tag(run)))) {
    // -S quotes the comment; the tag has no spaces, so the quotes can simply go
    runSync(IPTABLES ?? 'iptables', ['-w', ...line.replace(/^-A /, '-D ').replaceAll('"', '').split(' ')])
  }
  rmSync(join(STATE_DIR, run), { recursive: true, force: true })
  rmSync(ownerFile(run), { force: true })
}

/**
 * Removes what earlier runs with `prefix` left behind (namespaces, links, FORWARD rules, files) when their owner is
 * gone, e.g. a test killed by a timeout; runs of live processes, this one's included, are left alone.
 * Returns the names removed.
 */
export function cleanupStale (prefix: string): string[] {
  checkPrefix(prefix)
  const runOf = new RegExp(`^(${prefix}[0-9a-f]{4})(?:-[a-z0-9-]+|br|h\\d+|\\.owner)?$`)
  const rules = forwardRules()
  const found = new Map<string, RunParts & { other: string[] }>()
  const add = (name: string, kind: 'namespaces' | 'links' | 'other'): void => {
    const run = runOf.exec(name)?.[1]
    if (run === undefined) return
    const parts = found.get(run) ?? { namespaces: [], links: [], other: [] }
    found.set(run, parts)
    parts[kind].push(name)
  }
  for (const name of listNamespaces()) add(name, 'namespaces')
  for (const name of listLinks()) add(name, 'links')
  for (const name of existsSync(STATE_DIR) ? readdirSync(STATE_DIR) : []) add(name, 'other')
  for (const line of rules) add(/chaperone-netns:([a-z0-9]+)/.exec(line)?.[1] ?? '', 'other')
  const removed: string[] = []
  for (const [run, parts] of found) {
    if (ownerAlive(run)) continue
    // veths before the bridge, so no port is left dangling between the two deletions
    parts.links.sort((a, b) => Number(a.endsWith('br')) - Number(b.endsWith('br')))
    sweepSync(run, parts, rules)
    removed.push(...parts.namespaces, ...parts.links)
  }
  return removed
}

/* Sweeps of live runs, run synchronously if the process exits (an uncaught error) or is told to stop by a signal. */
const live = new Map<string, () => void>()
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const

function sweepAll (): void {
  for (const sweep of live.values()) {
    try { sweep() } catch { /* best effort: the process is on its way out */ }
  }
  live.clear()
}

/** Sweeps, then dies of the same signal (re-raised once this handler is gone, so tap still sees the signal). */
function onSignal (signal: NodeJS.Signals): void {
  sweepAll()
  unhook()
  process.kill(process.pid, signal)
}

function unhook (): void {
  process.removeListener('exit', sweepAll)
  for (const signal of SIGNALS) process.removeListener(signal, onSignal)
}

/** Registers `sweep` to run if the process ends while `run` is live; `release(run)` unregisters it. */
export function sweepOnExit (run: string, sweep: () => void): void {
  if (live.size === 0) {
    process.on('exit', sweepAll)
    for (const signal of SIGNALS) process.on(signal, onSignal)
  }
  live.set(run, sweep)
}

export function release (run: string): void {
  live.delete(run)
  if (live.size === 0) unhook()
}
