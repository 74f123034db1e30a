/**
 * The data path's targets, checked against every run: each as reached or missed, and for each what bounds it and
 * what was tried, in short (the profiles and measurements behind each line are in bench/tuning.md).
 */
import { FIGURES, formatNumber, formatRatio, ratioTo } from './figures'
import type { Figure, PathResult, Proxy } from './figures'

/** A sidecar's resident-set target. */
export const SIDECAR_RSS_TARGET_MB = 60

interface Target {
  readonly label: string
  /** The measured value as shown, and whether it reaches the target; undefined when the run has no such figure. */
  readonly check: (results: readonly PathResult[]) => { shown: string, reached: boolean } | undefined
  readonly target: string
  /** What bounds it; from the run itself where a figure of this run says it. */
  readonly bound: string | ((results: readonly PathResult[]) => string)
  readonly tried: string
  /** The section of tuning.md with the profile. */
  readonly section: string
}

/** A Chaperone figure as a ratio to `peer`'s in the same mode, judged by `reached`. */
function versus (fig: Figure, mode: 'tcp' | 'http', peer: Proxy, reached: (ratio: number) => boolean): Target['check'] {
  return results => {
    const [path, ref] = ['Chaperone', peer].map(proxy => results.find(p => p.proxy === proxy && p.mode === mode))
    const r = path === undefined ? undefined : ratioTo(fig, path, ref)
    return r === undefined ? undefined : { shown: formatRatio(r), reached: reached(r) }
  }
}

/**
 * Where Node itself stands against ghostunnel on `fig`, in this run: the bare Node.js TLS pipe (node-tls-pipe.ts) as a
 * ratio to ghostunnel, and the sidecars in TCP mode as a ratio to that pipe. `pipeWork`: what the pipe does for
 * this figure.
 */
function nodeFloor (fig: Figure, pipeWork: string): (results: readonly PathResult[]) => string {
  return results => {
    const [chaperone, node, ghostunnel] = (['Chaperone', 'Node.js', 'ghostunnel'] as const).map(proxy => results.find(p => p.proxy === proxy && p.mode === 'tcp'))
    if (node === undefined) return ''
    return `Node's own floor: the bare Node.js TLS pipe (Node's TLS and stream pipes, the chain and one ID checked, nothing else; ${pipeWork}) ` +
      `makes ${formatRatio(ratioTo(fig, node, ghostunnel))} ghostunnel's figure in this run, and the sidecars ${formatRatio(chaperone === undefined ? undefined : ratioTo(fig, chaperone, node))} the pipe's. `
  }
}

/** Reached at `atLeast` × haproxy's figure in the same mode, or more. */
const ratioAtLeast = (fig: Figure, mode: 'tcp' | 'http', atLeast: number): Target['check'] => versus(fig, mode, 'haproxy', r => r >= atLeast)

/** Reached when ahead of ghostunnel's figure (TCP mode: ghostunnel is a TCP proxy). */
const aheadOfGhostunnel = (fig: Figure): Target['check'] => versus(fig, 'tcp', 'ghostunnel', r => r > 1)

const largestSidecarPeak: Target['check'] = results => {
  const peaks = results.filter(p => p.proxy === 'Chaperone').flatMap(p => p.peakRssMb)
  if (peaks.length === 0) return undefined
  const worst = Math.max(...peaks)
  return { shown: `${formatNumber(worst, 1)} MB`, reached: worst <= SIDECAR_RSS_TARGET_MB }
}

export const TARGETS: readonly Target[] = [
  {
    label: 'keep-alive requests/s, TCP mode',
    check: ratioAtLeast(FIGURES.keepAliveRps, 'tcp', 0.8),
    target: '≥ 0.80×',
    bound: 'native writes (SSL_write and the send syscall, one per record) take 34–38 % of a sidecar\'s samples, Node\'s stream ' +
      'layer about 10 %; our code does nothing per chunk. Same system calls per request as haproxy; the gap is user time in Node\'s layers.',
    tried: 'streams piped with no JavaScript of ours per chunk, TLS contexts built once per rotation, TCP_NODELAY, a 1 MiB young generation',
    section: 'tcp-mode-bound-by-native-writes-and-the-stream-layer'
  },
  {
    label: 'keep-alive requests/s, TCP mode, vs ghostunnel',
    check: aheadOfGhostunnel(FIGURES.keepAliveRps),
    target: '> 1.00× ghostunnel',
    bound: results => `${nodeFloor(FIGURES.keepAliveRps, 'the same TLS records and system calls as the sidecars')(results)}As against haproxy: ` +
      'native writes and Node\'s stream layer. ghostunnel copies each direction with Go\'s io.Copy, one goroutine each, all on its one thread.',
    tried: 'as against haproxy',
    section: 'tcp-mode-bound-by-native-writes-and-the-stream-layer'
  },
  {
    label: 'keep-alive requests/s, HTTP mode',
    check: ratioAtLeast(FIGURES.keepAliveRps, 'http', 0.6),
    target: '≥ 0.60×',
    bound: 'native writes take about 35 % of the samples, as in TCP mode; head parsing, routing, the policy and the metrics about 9 %, garbage ' +
      'collection about 5 %.',
    tried: 'Node\'s HTTP stack replaced by our own forwarder (0.20× → 0.47×), pooled upstreams, no pause/resume per request, Buffer heads, the per-request metrics counted outside prom-client',
    section: 'http-mode-replaced-nodes-http-stack-with-our-own-forwarder'
  },
  {
    label: 'new connections/s, TCP mode',
    check: ratioAtLeast(FIGURES.newConnectionRate, 'tcp', 0.9),
    target: '≥ 0.90×',
    bound: 'the TLS handshake: OpenSSL 3.0 takes about 200 µs to decode a certificate (the peer\'s, from the resumed session, on ' +
      'each side), the key exchange, and Node\'s objects for three sockets per connection.',
    tried: 'session resumption; the session decoded once per connection, not twice; a resumed session\'s leaf read without building ' +
      'the detailed certificate object',
    section: 'new-connections-bound-by-the-tls-handshake'
  },
  {
    label: 'new connections/s, TCP mode, vs ghostunnel',
    check: aheadOfGhostunnel(FIGURES.newConnectionRate),
    target: '> 1.00× ghostunnel',
    bound: results => `${nodeFloor(FIGURES.newConnectionRate, 'a full handshake per connection, as ghostunnel makes')(results)}The TLS handshake, as ` +
      'against haproxy: Node\'s (OpenSSL 3.0) costs several times Go\'s. ghostunnel v1.8.4\'s client hop keeps no session cache, so every one ' +
      'of its connections is a full handshake; the sidecars resume theirs.',
    tried: 'as against haproxy',
    section: 'new-connections-bound-by-the-tls-handshake'
  },
  {
    label: 'sidecar peak RSS under load',
    check: largestSidecarPeak,
    target: `≤ ${SIDECAR_RSS_TARGET_MB} MB`,
    bound: 'a bare Node process is 40 MB RSS here, 34 MB of it program pages shared by every Node process; loading the Workload API ' +
      'client, the policy and the metrics adds about 25 MB, socket buffers and the heap\'s growth under load the rest.',
    tried: 'the young generation capped at 1 MiB (private memory 62 → 36 MB), jose, koffi and http-proxy no longer loaded; ' +
      'MALLOC_ARENA_MAX=2 and a single-threaded GC changed nothing',
    section: 'memory'
  }
]

export function renderTargets (results: readonly PathResult[]): string[] {
  return [
    '## Targets', '',
    'Ratios to haproxy in the same mode (to ghostunnel where the row says so), from this run. Where a target is missed, what bounds it ' +
      '(from the profiles) and what was tried; the profiles and measurements behind each line are in tuning.md.', '',
    '| figure | target | this run | what bounds it | what was tried |',
    '|---|---:|---:|---|---|',
    ...TARGETS.map(target => {
      const measured = target.check(results)
      const shown = measured === undefined ? '—' : `${measured.shown}, ${measured.reached ? 'reached' : '**missed**'}`
      const bound = typeof target.bound === 'string' ? target.bound : target.bound(results)
      return `| ${target.label} | ${target.target} | ${shown} | ${bound} [profile](tuning.md#${target.section}) | ${target.tried} |`
    }),
    ''
  ]
}
