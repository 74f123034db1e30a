/**
 * The proxy benchmark's table: medians of the rounds, and every proxy's figures as ratios to haproxy's in the
 * same mode, since absolute numbers depend on the machine and only the comparison travels.
 */
import { cpus, totalmem } from 'node:os'
import type { WrkOptions, WrkResult } from './wrk'

export interface PathResult {
  readonly name: string
  /** The haproxy path of this mode is the reference for ratios; `undefined` (direct) has none. */
  readonly mode: 'tcp' | 'http' | undefined
  readonly reference: boolean
  readonly rounds: readonly WrkResult[]
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

interface Medians { rps: number, p50: number, p99: number, errors: number }

function medians (result: PathResult): Medians {
  const of = (pick: (r: WrkResult) => number): number => median(result.rounds.map(pick))
  return { rps: of(r => r.requestsPerSecond), p50: of(r => r.p50Ms), p99: of(r => r.p99Ms), errors: result.rounds.reduce((sum, r) => sum + r.errors, 0) }
}

export interface Machine { readonly versions: Record<string, string> }

export function renderTable (results: readonly PathResult[], options: WrkOptions & { rounds: number }, machine: Machine): string {
  const all = new Map(results.map(r => [r, medians(r)]))
  const referenceOf = (mode: PathResult['mode']): Medians | undefined => {
    const ref = results.find(r => r.reference && r.mode === mode)
    return ref === undefined ? undefined : all.get(ref)
  }
  const ratio = (value: number, ref: number | undefined): string => ref === undefined ? '—' : `${(value / ref).toFixed(2)}×`
  const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
  const cpu = cpus()
  const lines = [
    `# Proxy benchmark: Chaperone sidecars vs haproxy and nginx`,
    '',
    `- date: ${new Date().toISOString()}`,
    `- machine: ${cpu.length} × ${cpu[0]?.model ?? 'unknown cpu'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB; wrk, the backend and every proxy share these cores`,
    `- versions: ${Object.entries(machine.versions).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    `- load: \`wrk -t${options.threads} -c${options.connections} -d${options.seconds}s --latency\`, keep-alive, on loopback; ${options.rounds} rounds, the paths interleaved; medians`,
    '- every proxy path is two hops (client side → server side, mutual TLS with the same EC P-256 SVIDs), one process and one thread per hop',
    '- ratios: to haproxy in the same mode (requests/s: higher is better; latency: lower is better)',
    '',
    '| path | requests/s | p50 ms | p99 ms | req/s ratio | p50 ratio | p99 ratio | errors |',
    '|---|---:|---:|---:|---:|---:|---:|---:|'
  ]
  for (const result of results) {
    const m = all.get(result) as Medians
    const ref = result.reference ? undefined : referenceOf(result.mode)
    lines.push(`| ${result.name} | ${fmt(m.rps)} | ${fmt(m.p50, 2)} | ${fmt(m.p99, 2)} | ${result.reference ? '1.00×' : ratio(m.rps, ref?.rps)} | ` +
      `${result.reference ? '1.00×' : ratio(m.p50, ref?.p50)} | ${result.reference ? '1.00×' : ratio(m.p99, ref?.p99)} | ${m.errors} |`)
  }
  lines.push('', 'What each side checks: Chaperone verifies the peer chain, its SPIFFE ID and the policy at both ends; haproxy verifies the chain only ' +
    '(no name check: an SVID names its workload in a URI SAN); nginx\'s client hop cannot verify the server at all (`proxy_ssl_verify` checks DNS names only), ' +
    'its server hop verifies the client chain.', '',
    'Rounds per path (requests/s): ' + results.map(r => `${r.name}: ${r.rounds.map(x => fmt(x.requestsPerSecond)).join(' / ')}`).join('; '), '')
  return lines.join('\n')
}
