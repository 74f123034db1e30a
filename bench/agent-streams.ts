/**
 * Benchmark: a real agent process with 1,000 registration entries and 1,000 open FetchX509SVID streams.
 * Reports the time from one SVID rotation (an entry update forces a new SVID) until every stream has received it,
 * and the agent's resident memory. The streams come from this process, so the kernel attests all of them as us;
 * messages are counted, not parsed, so the figure is the agent's work and not this client's.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { Client, Metadata, credentials } from '@grpc/grpc-js'
import { AdminClient } from '../agent/admin/client'

const ENTRIES = 1000
const STREAMS = 1000
const ROUNDS = 5

function rssMiB (pid: number): number {
  const kib = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
  return Number(kib ?? 0) / 1024
}

async function waitFor (condition: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 2))
  }
}

export async function benchAgentStreams (): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-bench-'))
  const adminSocket = join(dir, 'admin.sock')
  const socket = join(dir, 'workload.sock')
  // BENCH_AGENT_NODE_ARGS passes options to the agent's node, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile it.
  const nodeArgs = (process.env.BENCH_AGENT_NODE_ARGS ?? '').split(' ').filter(arg => arg !== '')
  const agent = spawn(process.execPath, [...nodeArgs, join(__dirname, '..', 'cli', 'main.js'), 'agent', 'run', '--trust-domain', 'bench.example',
    '--data-dir', join(dir, 'data'), '--socket', socket, '--admin-socket', adminSocket, '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'inherit'] })
  const admin = new AdminClient(adminSocket)
  const workload = new Client(`unix:${socket}`, credentials.createInsecure())
  const metadata = new Metadata()
  metadata.set('workload.spiffe.io', 'true')
  const bytes = (value: unknown): Buffer => Buffer.isBuffer(value) ? value : Buffer.alloc(0)
  const cancels: Array<() => void> = []
  try {
    await once(agent.stdout as NodeJS.ReadableStream, 'data')
    const uid = process.getuid?.() ?? 0
    // One entry matches this process; the other 999 belong to other (absent) workloads.
    const startRss = rssMiB(agent.pid ?? 0)
    const mine = await admin.createEntry({ spiffe_id: 'spiffe://bench.example/streamer', selectors: [`unix:uid:${uid}`] })
    for (let i = 1; i < ENTRIES; i++) await admin.createEntry({ spiffe_id: `spiffe://bench.example/w${i}`, selectors: [`unix:uid:${100000 + i}`] })
    const entriesRss = rssMiB(agent.pid ?? 0)
    const received = new Array<number>(STREAMS).fill(0)
    for (let i = 0; i < STREAMS; i++) {
      const call = workload.makeServerStreamRequest('/SpiffeWorkloadAPI/FetchX509SVID', bytes, bytes, Buffer.alloc(0), metadata)
      call.on('data', () => { received[i]++ })
      call.on('error', () => {})
      cancels.push(() => call.cancel())
    }
    await waitFor(() => received.every(n => n >= 1), 'the first message on every stream')
    const idleRss = rssMiB(agent.pid ?? 0)
    const pushes: number[] = []
    for (let round = 1; round <= ROUNDS; round++) {
      const start = performance.now()
      await admin.updateEntry({ id: mine.id, hint: `round-${round}` }, ['hint'])
      await waitFor(() => received.every(n => n >= round + 1), `round ${round} on every stream`)
      pushes.push(performance.now() - start)
    }
    const sorted = [...pushes].sort((a, b) => a - b)
    return [
      `one SVID rotation pushed to ${STREAMS} open streams (median of ${ROUNDS})`.padEnd(64) + `${sorted[Math.floor(ROUNDS / 2)].toFixed(1).padStart(12)} ms   (rounds ${sorted.map(ms => ms.toFixed(0)).join(', ')})`,
      `agent RSS with ${ENTRIES} entries and ${STREAMS} streams`.padEnd(64) +
        `${idleRss.toFixed(1).padStart(12)} MiB (at start ${startRss.toFixed(1)}, with the entries ${entriesRss.toFixed(1)}, after the rounds ${rssMiB(agent.pid ?? 0).toFixed(1)})`
    ]
  } finally {
    for (const cancel of cancels) cancel()
    workload.close()
    admin.close()
    agent.kill('SIGTERM')
    await once(agent, 'exit')
    rmSync(dir, { recursive: true, force: true })
  }
}
