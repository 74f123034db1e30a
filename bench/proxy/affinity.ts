/**
 * CPU affinity, for a Go program that sizes its scheduler from the CPUs it may use when it starts (ghostunnel
 * v1.8.4 calls `runtime.GOMAXPROCS(runtime.NumCPU())`, overriding the GOMAXPROCS variable): it is started on one
 * CPU, so it runs Go code on one thread like the other proxies' hops, then allowed every CPU the benchmark has, so
 * the kernel schedules it like them. Go reads the count once, at start; the scheduler keeps its one thread.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { execText } from './processes'

/** The `Cpus_allowed_list:` of a /proc/<pid>/status text: the kernel's list, e.g. `0-3,6`. */
export function parseAllowedCpus (status: string): string {
  const m = /^Cpus_allowed_list:\s*(\S+)\s*$/m.exec(status)
  if (m === null) throw new Error('no Cpus_allowed_list in /proc status')
  return m[1]
}

/** The lowest CPU of a list such as `0-3,6` (the kernel writes its ranges in ascending order). */
export function firstCpu (list: string): number {
  const first = /^(\d+)(?:-\d+)?(?:,|$)/.exec(list)
  if (first === null) throw new Error(`unreadable CPU list ${JSON.stringify(list)}`)
  return Number(first[1])
}

/** The CPUs this process may run on: every CPU the benchmark's processes get. */
export const benchCpus = (): string => parseAllowedCpus(readFileSync('/proc/self/status', 'utf8'))

/** `taskset`'s arguments that start `command` on `cpu` alone (taskset execs it: the pid is the command's). */
export const onOneCpu = (cpu: number, command: string, args: readonly string[]): string[] => ['-c', String(cpu), command, ...args]

/** Lets every thread of `pid` run on `list`, and checks that each now may. */
export async function allowCpus (pid: number, list: string): Promise<void> {
  await execText('taskset', ['-a', '-p', '-c', list, String(pid)])
  const cpusOf = (task: string): string | undefined => {
    try {
      return parseAllowedCpus(readFileSync(`/proc/${pid}/task/${task}/status`, 'utf8'))
    } catch {
      return undefined // the thread has exited meanwhile
    }
  }
  const narrow = readdirSync(`/proc/${pid}/task`).filter(task => ![list, undefined].includes(cpusOf(task)))
  if (narrow.length > 0) throw new Error(`threads ${narrow.join(', ')} of process ${pid} are still not allowed CPUs ${list}`)
}
