/**
 * What bounds node mode's figures and what would move them, as found by profiling the benchmark's own setup
 * (2026-12-03: `BENCH_NODE_PROXY_ARGS="--cpu-prof --cpu-prof-dir=DIR"`, heap snapshots through memory-probe.ts, and
 * SecureContexts counted in a bare Node process). Static text: the figures of each run are in the tables around it.
 */

/** One line per target kind, for the targets table. */
export const BOUND = {
  memory: 'a Node process: 47 MB of program pages shared with every Node process and 31 MB private once started (22 MB of V8 heap, ' +
    'mostly loaded modules); each app adds 0.17–0.24 MB (0.10–0.15 MB heap, about 0.15 MB native: three OpenSSL contexts); under load ' +
    'Buffers awaiting collection add 30–45 MB',
  sameDevice: 'handed over inside the node proxy (`sameDevice: handoff`): two plain connections and no TLS, a third of the pair\'s CPU ' +
    'per request; through the tunnel instead, one thread would carry both TLS ends of the hop',
  twoDevices: 'each end is one node proxy as each end of the pair is one sidecar: the same records, the same JavaScript per request',
  latency: 'at 1,000 requests/s neither side is busy: p99 is the shared machine\'s scheduling noise (round by round, the same hop\'s ratio ' +
    'moves between 0.2× and 12×); alone and alternated at a quiet moment, 0.83–1.14× the pair\'s'
} as const

export const BOUNDS_SECTION: readonly string[] = [
  '### What bounds the figures, and what would move them', '',
  '- **Per request, CPU.** Profiles of the node proxy and of the sidecars under the same keep-alive loads have the same shape: in TCP mode ' +
    '`writeBuffer` (SSL_write and the send) takes 60–63 % of the samples, garbage collection 4–6 %, Node\'s stream layer most of the rest; in ' +
    'HTTP mode `writeBuffer` 45–49 %, collection 8–11 %, and the same HTTP/1.1 functions (head splitting, field parsing, serialising, the ' +
    'policy). Node mode adds nothing per request: its sockets are ordinary TCP handles once made in the app\'s namespace, and the tunnel ' +
    'header is read once per connection. Hence CPU per request within about 10 % of the pair\'s between devices (on one device the ' +
    'handoff takes the TLS away, below).',
  '- **Same device, requests/s.** A call between two apps of one node proxy is handed from the caller\'s side to the callee\'s inside ' +
    'the process (`sameDevice: handoff`, the default): both identities are known there, the callee\'s side decides and sets XFCC as for a ' +
    'tunnelled call, and no byte leaves the process, so there is no TLS between the two ends. The hop is two plain connections (the app\'s, ' +
    'and the proxy\'s to the callee app inside its namespace) instead of three with two TLS legs: its CPU per request is a third of the ' +
    'pair\'s. Through the tunnel instead (`sameDevice: tunnel`), the node proxy did the work of both sidecars on one thread, 0.8–1.0 of a ' +
    'core busy, and made 0.75–1.00× the pair\'s rate (three runs before the handoff). What would move that case: spread apps over worker ' +
    'threads — setns(2) acts on the calling thread, so each worker can make its own apps\' sockets, and a hop\'s two ends would run on two ' +
    'cores, as the pair\'s do.',
  '- **Latency at a fixed rate.** At 1,000 requests/s neither side is busy, and the rounds\' p99 moves with the shared machine (the same ' +
    'hop\'s ratio between 0.2× and 12× round by round). The paced client alone, node mode and the pair alternated six to eight times at a ' +
    'quiet moment: node mode\'s median p99 0.83× the pair\'s on the same device in HTTP mode, 0.97× in TCP mode, 1.14× and 1.07× between ' +
    'devices; its p50 0.8–1.0× (one process fewer to wake between the two ends on the same device). Nothing in node mode adds latency ' +
    'per request. What a node proxy has more of is heap (22 MB against a sidecar\'s 15 MB): with the GC pauses of every process logged ' +
    '(a PerformanceObserver preloaded ad hoc), pauses inside the paced runs were 2–10 ms on both sides, but full collections took 11–33 ms ' +
    'in the node proxies against 7–20 ms in the sidecars, and one falling into a paced run would lift its p99 by as much. A p99 target ' +
    'of ±10 % is below what this shared machine tells apart.',
  '- **Memory per app.** Heap snapshots at 10 and 50 apps put one more app\'s heap at 0.10–0.15 MB: its three listeners, its Delegated ' +
    'Identity stream, its metrics registry (eight metric objects), loggers and the closures around them, none large. Its native part is ' +
    'three OpenSSL contexts: one client context, and one per TLS listener (tunnel and inbound), because each `tls.Server` builds its own ' +
    'from the same options; a context with an EC P-256 SVID holds 51–53 KB (200 of them in a bare Node process). What would move it: ' +
    '**one server SecureContext per app, shared by its tunnel and inbound listeners** (built once per SVID, as the client context is): ' +
    '−52 KB per app, a third of the native part.',
  '- **Memory, the base.** A node proxy once started is about 10 MB above a sidecar in transparent mode: after a collection, 2 MB more ' +
    'live heap (node/\'s modules\' compiled code and strings), about 3 MB more native memory, and heap headroom. jose (0.9 MB of heap) is ' +
    'no longer part of it: the Delegated Identity messages load it only when JWT-SVIDs are asked for, which a node proxy never does, and ' +
    'node/ imports the SPIFFE modules it uses rather than spiffe/\'s index (test/cli/cli-startup.test.ts checks it).',
  '- **Memory under load.** The peak is 30–45 MB above idle at any N: Buffers of the 1 MiB body load waiting for collection, as in a ' +
    'sidecar (tuning.md, Memory). The sidecar\'s lever applies unchanged: read the sockets the proxy opens into one reused buffer.',
  ''
]
