/**
 * Preloaded into the benchmark's proxies (`node --require …/memory-probe.js`), never into the product: on SIGUSR2 it
 * writes the process's own view of its memory (process.memoryUsage: V8's heap, memory held outside it for JavaScript
 * objects, Buffers) and its handle count to $CHAPERONE_BENCH_MEMORY_FILE; on SIGPWR it writes a heap snapshot next to
 * it (`<file>.heapsnapshot`, then `<file>.heapsnapshot.done`). The benchmark reads both (memory.ts), so where the
 * memory goes is measured inside the process unchanged, not guessed from outside. It does nothing without the
 * variable.
 */
import { renameSync, writeFileSync } from 'node:fs'
import { getHeapStatistics, writeHeapSnapshot } from 'node:v8'

export interface ProbeReport {
  /** Date.now() when written: the reader waits for a report newer than its signal. */
  readonly at: number
  readonly rss: number
  readonly heapTotal: number
  readonly heapUsed: number
  readonly external: number
  readonly arrayBuffers: number
  /** V8's malloc'd memory outside the heap (compiler zones, …). */
  readonly mallocedMemory: number
  /** Open libuv handles: listeners, sockets, timers. */
  readonly handles: number
}

/** Writes to a temporary name, then renames: a reader never sees half a report. */
function writeWhole (file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text)
  renameSync(`${file}.tmp`, file)
}

function report (): ProbeReport {
  const usage = process.memoryUsage()
  const handles = (process as unknown as { _getActiveHandles?: () => unknown[] })._getActiveHandles?.().length ?? -1
  return { at: Date.now(), ...usage, mallocedMemory: getHeapStatistics().malloced_memory, handles }
}

const file = process.env.CHAPERONE_BENCH_MEMORY_FILE
if (file !== undefined && file !== '') {
  process.on('SIGUSR2', () => { writeWhole(file, JSON.stringify(report())) })
  process.on('SIGPWR', () => {
    writeHeapSnapshot(`${file}.heapsnapshot`)
    writeFileSync(`${file}.heapsnapshot.done`, '')
  })
}
