/**
 * CPU time and memory of a proxy's processes, from /proc: every hop is a process tree (nginx: a master and its
 * worker), summed. CPU is utime + stime in clock ticks; memory is the resident set, now (VmRSS) or at its
 * peak since the process started (VmHWM), and its private part now (RssAnon: without the pages of the program and
 * its libraries, which every process running the same binary shares).
 */
import { readFileSync, readdirSync } from 'node:fs'
import { execText } from './processes'

/** utime + stime (fields 14 and 15) of a /proc/<pid>/stat line. The command name (2) may hold spaces and ')'. */
export function parseStatTicks (stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).trim().split(/\s+/)
  // fields[0] is field 3 (the state), so field n is fields[n - 3].
  const [utime, stime] = [Number(fields[11]), Number(fields[12])]
  if (!Number.isInteger(utime) || !Number.isInteger(stime)) throw new Error(`unreadable /proc stat line: ${stat.slice(0, 120)}`)
  return utime + stime
}

/** A `Vm…: <n> kB` line of /proc/<pid>/status, in kB. */
export function parseStatusKb (status: string, field: 'VmRSS' | 'VmHWM' | 'RssAnon'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status)
  if (m === null) throw new Error(`no ${field} in /proc status`)
  return Number(m[1])
}

/** The children of every thread of `pid`: a space-separated list per thread. */
export function parseChildren (lists: readonly string[]): number[] {
  return lists.flatMap(text => text.trim().split(/\s+/).filter(s => s !== '').map(Number))
}

const read = (pid: number, file: string): string => readFileSync(`/proc/${pid}/${file}`, 'utf8')

/** `pid` and all its descendants. */
export function processTree (pid: number): number[] {
  let tasks: string[]
  try {
    tasks = readdirSync(`/proc/${pid}/task`)
  } catch {
    throw new Error(`process ${pid} is gone`)
  }
  const children = parseChildren(tasks.map(task => read(pid, `task/${task}/children`)))
  return [pid, ...children.flatMap(processTree)]
}

/** CPU ticks so far, resident set now and at its peak, of a process tree: sums over its processes. */
export interface TreeUsage { readonly cpuTicks: number, readonly rssKb: number, readonly peakRssKb: number, readonly privateKb: number }

export function treeUsage (pid: number): TreeUsage {
  let [cpuTicks, rssKb, peakRssKb, privateKb] = [0, 0, 0, 0]
  for (const member of processTree(pid)) {
    const status = read(member, 'status')
    cpuTicks += parseStatTicks(read(member, 'stat'))
    rssKb += parseStatusKb(status, 'VmRSS')
    peakRssKb += parseStatusKb(status, 'VmHWM')
    privateKb += parseStatusKb(status, 'RssAnon')
  }
  return { cpuTicks, rssKb, peakRssKb, privateKb }
}

/** Clock ticks per second for /proc times (`getconf CLK_TCK`, 100 on Linux). */
export async function clockTicksPerSecond (): Promise<number> {
  const ticks = Number((await execText('getconf', ['CLK_TCK'])).trim())
  if (!(ticks > 0)) throw new Error('getconf CLK_TCK gave no tick rate')
  return ticks
}
