/**
 * A proxy's memory, from outside and from inside: /proc/<pid>/status (the resident set now and at its peak, and its
 * private part: RssAnon, without the program's and libraries' pages, which every Node process on the host shares)
 * and the memory probe's report (memory-probe.ts: V8's heap, memory outside it held for JavaScript objects, Buffers).
 * What neither accounts for — resident, private, but not V8's heap nor external — is native memory: OpenSSL's
 * contexts, libuv, gRPC's and Node's C++ objects, malloc's free lists.
 */
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { parseStatusKb } from '../proxy/proc'
import type { ProbeReport } from './memory-probe'

/** A proxy process started with the memory probe, and where the probe writes. */
export interface ProbedProcess { readonly pid: number, readonly memoryFile: string }

/** Node's arguments and the environment that preload the probe, writing to `memoryFile`. */
export function probed (memoryFile: string): { args: string[], env: NodeJS.ProcessEnv } {
  return { args: ['--require', join(__dirname, 'memory-probe.js')], env: { CHAPERONE_BENCH_MEMORY_FILE: memoryFile } }
}

export interface MemorySample {
  /** MB (10^6 bytes), as the proxy benchmark reports memory. */
  readonly rssMb: number
  readonly peakRssMb: number
  readonly privateMb: number
  readonly heapTotalMb: number
  readonly heapUsedMb: number
  readonly externalMb: number
  /** Private resident memory that is neither V8's heap nor external: native allocations. */
  readonly nativeMb: number
  readonly handles: number
}

const MB = 1e6
const kbToMb = (kb: number): number => kb * 1024 / MB

/** Resident set now and at its peak, and its private part, in MB. */
export function procMemory (pid: number): { rssMb: number, peakRssMb: number, privateMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return { rssMb: kbToMb(parseStatusKb(status, 'VmRSS')), peakRssMb: kbToMb(parseStatusKb(status, 'VmHWM')), privateMb: kbToMb(parseStatusKb(status, 'RssAnon')) }
}

/** The sample from /proc and the probe's report taken together. */
export function combineMemory (proc: ReturnType<typeof procMemory>, probe: ProbeReport): MemorySample {
  const [heapTotalMb, heapUsedMb, externalMb] = [probe.heapTotal, probe.heapUsed, probe.external].map(bytes => bytes / MB)
  return { ...proc, heapTotalMb, heapUsedMb, externalMb, nativeMb: Math.max(0, proc.privateMb - heapTotalMb - externalMb), handles: probe.handles }
}

async function waitFor<T> (what: string, probe: () => T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`no ${what} after ${timeoutMs} ms`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

/** Asks the probe in `pid` for its report (SIGUSR2) and reads /proc at the same moment. */
export async function sampleMemory (pid: number, file: string): Promise<MemorySample> {
  const asked = Date.now()
  process.kill(pid, 'SIGUSR2')
  const report = await waitFor(`memory report from process ${pid} in ${file}`, () => {
    if (!existsSync(file)) return undefined
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as ProbeReport
    return parsed.at >= asked ? parsed : undefined
  }, 10_000)
  return combineMemory(procMemory(pid), report)
}

/** Has the probe in `pid` write a heap snapshot (SIGPWR); its path. The process pauses while it writes. */
export async function takeHeapSnapshot (pid: number, file: string): Promise<string> {
  const [snapshot, done] = [`${file}.heapsnapshot`, `${file}.heapsnapshot.done`]
  rmSync(done, { force: true })
  process.kill(pid, 'SIGPWR')
  await waitFor(`heap snapshot from process ${pid}`, () => existsSync(done) && statSync(snapshot).size > 0 ? true : undefined, 120_000)
  return snapshot
}
