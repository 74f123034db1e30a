import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { WorkloadAdmission, openFilesLimit } from '../../../agent/workload/admission'

// The Workload API's admission of connections by uid, alone: the per-uid cap, the descriptors kept for uids the
// agent has issued an identity to, the agent's own files, and one log line per reason per interval.

function admission (limits: { maxConnectionsPerUid?: number, reservedDescriptors?: number }, openFiles: number): { admission: WorkloadAdmission, logs: Array<Record<string, unknown>> } {
  const logs: Array<Record<string, unknown>> = []
  const logger = pino({ level: 'warn' }, { write: (line: string) => { logs.push(JSON.parse(line) as Record<string, unknown>) } })
  return { admission: new WorkloadAdmission({ idleTimeoutMs: 5000, maxConnectionsPerUid: 1024, reservedDescriptors: 256, ...limits }, logger, openFiles), logs }
}

void t.test('admission – a uid holds at most maxConnectionsPerUid; a closed connection frees its place', async t => {
  const { admission: a } = admission({ maxConnectionsPerUid: 3 }, 20_000)
  t.same([a.admit(1001), a.admit(1001), a.admit(1001)], [undefined, undefined, undefined])
  t.equal(a.admit(1001), 'max_connections_per_uid')
  t.equal(a.admit(1002), undefined, 'another uid is not affected')
  a.release(1001)
  t.equal(a.admit(1001), undefined, 'after one closed')
  t.equal(a.status().open, 4, 'three of 1001, one of 1002')
})

void t.test('admission – the reserved descriptors go only to uids issued an identity, the last 64 to none', async t => {
  // 400 open files: 64 for the agent, 256 reserved, so 80 for anyone.
  const { admission: a } = admission({ reservedDescriptors: 256 }, 400)
  for (let n = 0; n < 80; n++) t.equal(a.admit(2000 + n), undefined)
  t.equal(a.admit(3000), 'reserved_descriptors', 'an unknown uid at the reserve')
  a.identified(1001)
  for (let n = 80; n < 336; n++) if (a.admit(1001) !== undefined) t.fail(`the identified uid refused at ${n}`)
  t.equal(a.admit(1001), 'open_files_limit', 'not even an identified uid past the agent\'s own files')
})

void t.test('admission – refusals are counted by reason and logged once per interval, saying how many were suppressed', async t => {
  const { admission: a, logs } = admission({}, 20_000)
  for (let n = 0; n < 500; n++) a.refused('max_connections_per_uid', { uid: 1001, pid: 42 })
  a.refused('unidentified', {})
  t.same(a.status().refused, { max_connections_per_uid: 500, unidentified: 1 })
  t.equal(logs.length, 2, 'one line per reason')
  t.match(logs[0], { event: 'workload_connection_refused', reason: 'max_connections_per_uid', uid: 1001, pid: 42, refused_total: 1, msg: /maxConnectionsPerUid/ })
})

void t.test('admission – the open-files limit is read from /proc/self/limits; 1024 when it cannot be', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-limits-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const file = join(dir, 'limits')
  writeFileSync(file, 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            4096                 524288               files\n')
  t.equal(openFilesLimit(file), 4096)
  writeFileSync(file, 'Max open files            unlimited            unlimited            files\n')
  t.equal(openFilesLimit(file), 1024)
  t.equal(openFilesLimit(join(dir, 'missing')), 1024)
  t.ok(openFilesLimit() > 0, 'this process\'s own')
})
