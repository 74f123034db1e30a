/**
 * bench/results.md: the targets, the summary the README shows, how each figure was measured, then one table per load
 * (medians of the rounds, and ratios to haproxy in the same mode), the resources table, what each proxy checks, and
 * the rounds themselves.
 */
import { cpus, totalmem } from 'node:os'
import { FIGURES, errorsOf, formatNumber, formatRatio, ratio } from './figures'
import type { Figure, PathResult } from './figures'
import type { Loads } from './loads'
import { renderTargets } from './targets'
import { wrkArgs } from './wrk'

export interface ReportContext {
  readonly rounds: number
  readonly loads: Loads
  readonly versions: Record<string, string>
  readonly minutes: number
  /** The chart's file name, next to results.md. */
  readonly chart: string
  /** What the reader must know about this run: a path left out and why, a quick run. */
  readonly notes?: readonly string[]
}

interface Column { readonly header: string, readonly numeric: boolean, readonly cell: (path: PathResult) => string }

const text = (header: string, cell: Column['cell']): Column => ({ header, numeric: false, cell })
const number = (header: string, cell: Column['cell']): Column => ({ header, numeric: true, cell })
const value = (fig: Figure, header: string): Column => number(header, p => formatNumber(fig.value(p), fig.digits))
const versus = (fig: Figure, all: readonly PathResult[]): Column => number('× haproxy', p => formatRatio(ratio(fig, p, all)))
const errors = (load: Parameters<typeof errorsOf>[1]): Column => number('errors', p => String(errorsOf(p, load)))

export function renderTable (results: readonly PathResult[], columns: readonly Column[]): string[] {
  const all = [text('path', p => p.name), ...columns]
  return [
    `| ${all.map(c => c.header).join(' | ')} |`,
    `|${all.map(c => c.numeric ? '---:' : '---').join('|')}|`,
    ...results.map(p => `| ${all.map(c => c.cell(p)).join(' | ')} |`)
  ]
}

const wrkCommand = (options: Parameters<typeof wrkArgs>[1], path = '/'): string =>
  `\`wrk ${wrkArgs(`http://<path>${path}`, options).map(a => a.includes(' ') ? `'${a}'` : a).join(' ')}\``

/** "113–118 MB": the hops' peak resident sets, the smaller to the larger. */
function peakPerHop (p: PathResult): string {
  if (p.peakRssMb.length === 0) return '—'
  const [low, high] = [Math.min(...p.peakRssMb), Math.max(...p.peakRssMb)].map(mb => formatNumber(mb, 0))
  return `${low === high ? low : `${low}–${high}`} MB`
}

/** The headline figures of every path, as the README's table shows them (it is copied from here after a full run). */
export function summaryTable (results: readonly PathResult[]): string[] {
  const F = FIGURES
  return ['## Summary', '', 'The README\'s table: medians of the rounds; the details of each figure are in the sections below.', '',
    ...renderTable(results, [value(F.keepAliveRps, 'keep-alive req/s'), versus(F.keepAliveRps, results),
      number('p99 at 1,000 req/s', p => F.pacedP99.value(p) === undefined ? '—' : `${formatNumber(F.pacedP99.value(p), 2)} ms`),
      value(F.newConnectionRate, 'new conn./s'), versus(F.newConnectionRate, results), value(F.bodyThroughput, '1 MiB MiB/s'),
      value(F.cpuPer10k, 'CPU s / 10k req'), number('peak RSS per hop', peakPerHop)]), '']
}

/** "1 · 1 · 0": new connections per request at each listening port of the path. */
const perHop = (p: PathResult): string => p.audit.perRequest.map(n => formatNumber(n, n % 1 === 0 ? 0 : 2)).join(' · ')

/** How the ghostunnel pair is run, for the method (bench/proxy/ghostunnel.ts). */
const GHOSTUNNEL_SETUP = '- ghostunnel: `ghostunnel client --keystore <client SVID + key> --cacert <bundle> --verify-uri <server ID> ' +
  '--override-server-name <server DNS name>` → `ghostunnel server --keystore <server SVID + key> --cacert <bundle> --allow-uri <client ID>`, ' +
  'both `--quiet=conns --quiet=conn-errs` (no log line per connection: v1.8.4 logs the ordinary close of nearly every connection as a ' +
  'connection error; failed handshakes are still logged) and no status port. Go\'s TLS checks a server\'s name whenever it ' +
  'verifies from files, so the server SVID (the one every path uses) also carries a DNS name. ghostunnel v1.8.4 sets GOMAXPROCS to the CPUs it ' +
  'may use when it starts, overriding the environment, so each hop is started on one CPU (`taskset`) and then allowed all of them: Go keeps one ' +
  'thread running Go code, and the kernel schedules it like every other process. `GODEBUG=tlsmlkem=0`: the client hop does not compute a ' +
  'post-quantum key share on every handshake that its server hop never selects'

/** bench/proxy/node-tls-pipe.ts, described. */
const NODE_PIPE_SETUP = '- bare Node.js TLS pipe (bench/proxy/node-tls-pipe.ts): the client hop a `net` server piping each connection to `tls.connect` ' +
  '(its SVID, the bundle as CA, the server\'s SPIFFE ID checked), the server hop a `tls.createServer` (client certificate required, the client\'s ' +
  'ID checked) piping to `net.connect` to the backend, bytes moved by `stream.pipe` both ways, each hop one Node process with the sidecars\' ' +
  'flags. No policy, metrics, Workload API or TLS session cache: what any TCP proxy written for Node.js pays at least, measured in the same rounds'

function method (context: ReportContext, results: readonly PathResult[]): string[] {
  const { loads } = context
  const cpu = cpus()
  return [
    '## Method',
    '',
    ...(context.notes ?? []).map(note => `- **${note}**`),
    `- ${new Date().toISOString().slice(0, 10)}, ${cpu.length} × ${cpu[0]?.model ?? 'unknown cpu'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB; ` +
      'the load clients, the backend and every proxy share these cores, on loopback',
    `- versions: ${Object.entries(context.versions).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    '- paths: every proxy path is two hops (client side → server side, mutual TLS with the same EC P-256 SVIDs from our agent: ' +
      'the sidecars from its Workload API, the others from files written from it), ' +
      'one process and one thread per hop (haproxy `nbthread 1`, nginx one worker, a sidecar one Node process, its JavaScript on one thread, ' +
      'ghostunnel Go code on one thread, the bare Node.js TLS pipe one Node process with the sidecars\' Node flags), ' +
      'in front of a one-worker nginx backend; "direct" is the client straight to the backend, the bound of every figure',
    ...results.some(p => p.proxy === 'ghostunnel') ? [GHOSTUNNEL_SETUP] : [],
    ...results.some(p => p.proxy === 'Node.js') ? [NODE_PIPE_SETUP] : [],
    `- ${context.rounds} round${context.rounds === 1 ? '' : 's'} after a warm-up; each round runs every load on every path in turn (interleaved, so a slow spell of the shared ` +
      `machine hits every path); figures are medians of the rounds; the whole run took ${context.minutes.toFixed(1)} minutes`,
    '- **× haproxy**: the figure divided by haproxy\'s in the same mode (tcp or http); haproxy\'s rows are 1.00×. Above 1 is better for rates ' +
      'and throughput, worse for latency, CPU and memory',
    '',
    'The loads, one after the other on each path:',
    '',
    `1. **keep-alive**: ${wrkCommand(loads.keepAlive)}, each connection kept for the whole run; requests/s and wrk's p50/p99 latency.`,
    `2. **fixed rate**: ${loads.paced.rate.toLocaleString('en-US')} requests/s for ${loads.paced.seconds} s over ${loads.paced.connections} ` +
      'keep-alive connections from a paced client (bench/proxy/paced.ts, one request in flight per connection). Latency is counted from each ' +
      'request\'s *intended* send time, so a stall counts against every request it delays (no coordinated omission). Its timer ticks by the ' +
      'millisecond, which the direct row shows as the floor; "client lag" is how late the client itself sent (timer, event loop), ' +
      'a part of every latency that is not the path\'s.',
    `3. **one request per connection**: ${wrkCommand(loads.newConnections)}; every response says \`Connection: close\`, so wrk opens a new ` +
      'connection for every request: new connections/s, and the proxies\' CPU per 10,000 of them.',
    `4. **1 MiB body**: ${wrkCommand(loads.body, '/1m')}, a 1 MiB file the backend serves with sendfile; MiB/s from wrk's Transfer/sec. ` +
      'The nginx hops stream it rather than spool it to temp files (`proxy_max_temp_file_size 0`).',
    '5. **resources**: CPU is utime + stime of every process of both hops (`/proc/<pid>/stat`, nginx\'s master and worker summed) over the ' +
      'keep-alive runs, per 10,000 requests; peak RSS is each hop\'s VmHWM (`/proc/<pid>/status`) at the end of the run: the peak over every load; idle RSS is VmRSS once started, before any load.',
    ''
  ]
}

function tables (results: readonly PathResult[]): string[] {
  const F = FIGURES
  const rss = (hop: number): Column => number(`${['client', 'server'][hop]} hop MB, idle → peak`,
    p => p.peakRssMb.length === 0 ? '—' : `${formatNumber(p.idleRssMb[hop], 1)} → ${formatNumber(p.peakRssMb[hop], 1)}`)
  return [
    '## Keep-alive requests, 50 connections', '',
    ...renderTable(results, [value(F.keepAliveRps, 'requests/s'), versus(F.keepAliveRps, results), value(F.keepAliveP50, 'p50 ms'),
      versus(F.keepAliveP50, results), value(F.keepAliveP99, 'p99 ms'), versus(F.keepAliveP99, results), errors('keepAlive')]),
    '', '## Latency at a fixed rate of 1,000 requests/s', '',
    ...renderTable(results, [value(F.pacedP50, 'p50 ms'), versus(F.pacedP50, results), value(F.pacedP99, 'p99 ms'),
      versus(F.pacedP99, results), value(F.pacedMax, 'max ms'), versus(F.pacedMax, results), errors('paced'),
      value(F.pacedSendLag, 'client lag p99 ms')]),
    '', '## One request per connection, 50 connections', '',
    ...renderTable(results, [value(F.newConnectionRate, 'connections/s'), versus(F.newConnectionRate, results),
      value(F.newConnectionCpu, 'CPU s / 10k conn.'), versus(F.newConnectionCpu, results),
      text('new connections per request, port by port', perHop), errors('newConnections')]),
    '',
    ...connectionCosts(results),
    '', '## 1 MiB body, 4 connections', '',
    ...renderTable(results, [value(F.bodyThroughput, 'MiB/s'), versus(F.bodyThroughput, results), errors('body')]),
    '', '## Resources', '',
    ...renderTable(results, [value(F.cpuPer10k, 'CPU s / 10k requests'), versus(F.cpuPer10k, results), rss(0), rss(1),
      value(F.peakRss, 'both hops, peak MB'), versus(F.peakRss, results),
      text('private MB at the end, client · server', p => p.privateRssMb.length === 0 ? '—' : p.privateRssMb.map(mb => formatNumber(mb, 1)).join(' · '))]),
    '',
    'MB are 10⁶ bytes; the sidecar\'s target is judged under Targets. The private part (RssAnon) leaves out the pages of the program itself (Node\'s binary and libraries for a sidecar), ' +
      'which every process running it shares: the memory each more sidecar costs.',
    ''
  ]
}

/** "a new …" / "pooled …" / "0.40 new … per request" for one hop of the audit. */
function reuse (perRequest: number, what: string): string {
  if (perRequest >= 0.95) return `a new ${what}`
  if (perRequest <= 0.05) return `a pooled ${what} (none opened)`
  return `${formatNumber(perRequest, 2)} new ${what} per request`
}

function connectionCosts (results: readonly PathResult[]): string[] {
  const kept = results.filter(p => !p.audit.closesEveryResponse).map(p => p.name)
  const cost = ({ audit: { perRequest: [first, ...rest] }, proxy }: PathResult): string => proxy === 'direct'
    ? reuse(first, 'connection to the backend')
    : [reuse(first, 'client connection'), reuse(rest[0], 'mutual-TLS connection between the hops'), reuse(rest[1], 'connection to the backend')].join(', ')
  return [
    'What one request per connection costs on each path, counted (bench/proxy/audit.ts): 20 requests with `Connection: close`, each held ' +
      'at the backend while the kernel\'s socket table is read, so every connection it uses is open and counted, per listening port ' +
      '(client hop · server hop · backend; direct: the backend). ' +
      (kept.length === 0 ? 'Every path answered `Connection: close`, so wrk reconnected for every request.'
        : `**Some paths kept the connection open** (${kept.join(', ')}): their rate is not a new-connection rate.`),
    '',
    ...results.map(p => `- ${p.name}: ${cost(p)}`),
    '',
    'A new connection between the hops is a mutual-TLS handshake. Every client hop but ghostunnel\'s and the bare Node.js pipe\'s is set to resume TLS sessions (Chaperone\'s outbound ' +
      'session cache, haproxy\'s default server-side session reuse, nginx\'s `proxy_ssl_session_reuse on`), so it is normally an ' +
      'abbreviated handshake (Chaperone still checks the remembered peer chain, ID and policy); ghostunnel v1.8.4\'s client keeps no session cache, nor does the bare pipe, ' +
      'so each of their connections is a full handshake. The audit counts connections, not full handshakes.'
  ]
}

const CHECKS = 'Chaperone verifies the peer chain, its SPIFFE ID and the policy at both ends; haproxy verifies the chain only ' +
  '(no name check: an SVID names its workload in a URI SAN); nginx\'s client hop cannot verify the server at all (`proxy_ssl_verify` checks DNS names only), ' +
  'its server hop verifies the client chain; ghostunnel verifies the chain and the one SPIFFE ID it is given at both ends ' +
  '(`--verify-uri`, `--allow-uri`; no policy), its client hop also the server\'s DNS name; the bare Node.js TLS pipe verifies the chain and ' +
  'the one SPIFFE ID it is given at both ends, and keeps no TLS sessions.'

function roundsTable (results: readonly PathResult[]): string[] {
  const each = (digits: number, pick: (r: PathResult['rounds'][number]) => number): Column['cell'] =>
    p => p.rounds.map(r => formatNumber(pick(r), digits)).join(' / ')
  return ['## Every round', '',
    ...renderTable(results, [text('keep-alive req/s', each(0, r => r.keepAlive.requestsPerSecond)), text('p99 ms at 1,000 req/s', each(2, r => r.paced.p99Ms)),
      text('new conn./s', each(0, r => r.newConnections.requestsPerSecond)), text('1 MiB MiB/s', each(0, r => r.body.bytesPerSecond / 2 ** 20))]), '']
}

export function renderReport (results: readonly PathResult[], context: ReportContext): string {
  return [
    '# Proxy benchmark: Chaperone sidecars vs haproxy, nginx and ghostunnel', '',
    `![Proxy benchmark chart: each figure per path, haproxy's value marked](${context.chart})`, '',
    'What bounds each figure, the profiles, what was tuned and what was tried: [tuning.md](tuning.md).', '',
    ...renderTargets(results), ...summaryTable(results), ...method(context, results), ...tables(results), '## What each side checks', '', CHECKS, '', ...roundsTable(results)
  ].join('\n')
}
