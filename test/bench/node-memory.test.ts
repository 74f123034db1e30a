import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { combineMemory, sampleMemory, takeHeapSnapshot } from '../../bench/node/memory'
import { readHeapClasses } from '../../bench/node/heap-classes'

// The built probe, as the benchmark preloads it (npm test builds before tap runs).
const PROBE = join(__dirname, '..', '..', 'dist', 'bench', 'node', 'memory-probe.js')
const PROBE_SKIP = existsSync(PROBE) ? false : 'not built: run `npm run build` (npm test does)'

void t.test('node memory – native is what is private and neither V8\'s heap nor external', async t => {
  const sample = combineMemory({ rssMb: 80, peakRssMb: 100, privateMb: 35 },
    { at: 0, rss: 80e6, heapTotal: 22e6, heapUsed: 20e6, external: 3e6, arrayBuffers: 1e6, mallocedMemory: 0, handles: 7 })
  t.same(sample, { rssMb: 80, peakRssMb: 100, privateMb: 35, heapTotalMb: 22, heapUsedMb: 20, externalMb: 3, nativeMb: 10, handles: 7 })
  t.equal(combineMemory({ rssMb: 10, peakRssMb: 10, privateMb: 5 }, { at: 0, rss: 0, heapTotal: 6e6, heapUsed: 0, external: 0, arrayBuffers: 0, mallocedMemory: 0, handles: 0 }).nativeMb,
    0, 'never below zero (pages of the heap not resident yet)')
})

void t.test('node memory – the probe preloaded into a process reports its memory and writes a heap snapshot on signal', { skip: PROBE_SKIP }, async t => {
  const dir = mkdtempSync(join(tmpdir(), 'node-bench-probe-'))
  const file = join(dir, 'memory.json')
  const child = spawn(process.execPath, ['--require', PROBE, '-e', 'setInterval(() => {}, 1000); console.log("up")'],
    { env: { ...process.env, CHAPERONE_BENCH_MEMORY_FILE: file }, stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(async () => {
    child.kill('SIGKILL')
    if (child.exitCode === null) await once(child, 'exit')
    rmSync(dir, { recursive: true, force: true })
  })
  await once(child.stdout, 'data')
  const sample = await sampleMemory(child.pid as number, file)
  t.ok(sample.heapTotalMb > 1 && sample.heapUsedMb <= sample.heapTotalMb, `a heap (${sample.heapUsedMb.toFixed(1)} of ${sample.heapTotalMb.toFixed(1)} MB)`)
  t.ok(sample.rssMb > sample.privateMb && sample.privateMb > 0, 'resident, and part of it private')
  t.ok(sample.handles >= 1, 'the interval\'s timer at least')
  const snapshot = await takeHeapSnapshot(child.pid as number, file)
  t.ok(existsSync(snapshot))
  t.ok((readHeapClasses(snapshot).get('(code)')?.bytes ?? 0) > 0, 'a snapshot the class reader reads')
})
