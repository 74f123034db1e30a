/**
 * Runs wrk and reads its report. The parser takes only the lines it needs, by label, and converts every unit wrk
 * prints (us/ms/s, k/M suffixes, binary K/M/G bytes), so wrk's column alignment or extra lines cannot shift a figure.
 */
import { execText } from './processes'

export interface WrkResult {
  /** Completed requests over the run. */
  readonly requests: number
  readonly requestsPerSecond: number
  readonly p50Ms: number
  readonly p99Ms: number
  /** Response bytes per second, headers included (wrk's Transfer/sec). */
  readonly bytesPerSecond: number
  /** Socket errors plus non-2xx/3xx responses: a proxy that answers fast with errors must not look fast. */
  readonly errors: number
}

const TIME_UNITS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
const COUNT_UNITS: Record<string, number> = { '': 1, k: 1e3, K: 1e3, M: 1e6, G: 1e9 }
// wrk prints byte counts in powers of 1024 ("35.76MB" is 35.76 MiB).
const BYTE_UNITS: Record<string, number> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 }

function timeMs (text: string): number {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text)
  if (m === null) throw new Error(`unreadable wrk duration ${JSON.stringify(text)}`)
  return Number(m[1]) * TIME_UNITS[m[2]]
}

export function parseWrk (output: string): WrkResult {
  const requests = /^\s*(\d+) requests in /m.exec(output)
  const rps = /^Requests\/sec:\s+([\d.]+)([kKMG]?)\s*$/m.exec(output)
  const transfer = /^Transfer\/sec:\s+([\d.]+)([KMGT]?)B\s*$/m.exec(output)
  const p50 = /^\s+50(?:\.0+)?%\s+(\S+)\s*$/m.exec(output)
  const p99 = /^\s+99(?:\.0+)?%\s+(\S+)\s*$/m.exec(output)
  if (requests === null || rps === null || transfer === null || p50 === null || p99 === null) {
    throw new Error(`unreadable wrk output (run with --latency?):\n${output}`)
  }
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(output)
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(output)
  const errors = (socket?.slice(1).reduce((sum, n) => sum + Number(n), 0) ?? 0) + Number(non2xx?.[1] ?? 0)
  return {
    requests: Number(requests[1]),
    requestsPerSecond: Number(rps[1]) * COUNT_UNITS[rps[2]],
    p50Ms: timeMs(p50[1]),
    p99Ms: timeMs(p99[1]),
    bytesPerSecond: Number(transfer[1]) * BYTE_UNITS[transfer[2]],
    errors
  }
}

export interface WrkOptions {
  readonly threads: number
  readonly connections: number
  readonly seconds: number
  /** An extra request header, e.g. `Connection: close` for one request per connection. */
  readonly header?: string
}

export function wrkArgs (url: string, options: WrkOptions): string[] {
  return [`-t${options.threads}`, `-c${options.connections}`, `-d${options.seconds}s`, '--latency',
    ...(options.header === undefined ? [] : ['-H', options.header]), url]
}

/**
 * `launcher`: a command that runs wrk somewhere else, e.g. `['ip', 'netns', 'exec', '<ns>']` for a client inside a
 * network namespace (bench/node/); none: wrk itself.
 */
export async function runWrk (url: string, options: WrkOptions, launcher: readonly string[] = []): Promise<WrkResult> {
  const [command, ...args] = [...launcher, 'wrk', ...wrkArgs(url, options)]
  return parseWrk(await execText(command, args))
}
