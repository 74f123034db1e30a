import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, openSync, closeSync, rmSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { Agent } from '../../../agent/agent'
import { AdminClient } from '../../../agent/admin/client'
import { loadAgentConfig } from '../../../agent/config'

// The data directory on a real file system that is full, or read-only (a tmpfs of the test's own, root only):
// the operator is told which, by the CLI's admin client and in the agent's log, not "disk I/O error" or "see its log".

const root = process.getuid?.() === 0
const skip = root ? false : 'needs root: mounts a small tmpfs to fill and to make read-only'

function mount (dir: string, options: string): void {
  const run = spawnSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { encoding: 'utf8' })
  if (run.status !== 0) throw new Error(`mount: ${run.stderr}`)
}

async function start (dir: string, logs: Array<Record<string, unknown>>): Promise<Agent> {
  const logger = pino({ level: 'warn' }, { write: (line: string) => { logs.push(JSON.parse(line) as Record<string, unknown>) } })
  return await Agent.start(loadAgentConfig(undefined, { trustDomain: 'plant.example', dataDir: join(dir, 'data'), socket: join(dir, 'w.sock'), adminSocket: join(dir, 'a.sock'), serverSocket: join(dir, 's.sock') }), logger)
}

/** Writes zeros into `file` until the file system refuses (ENOSPC). */
function fill (file: string): void {
  const fd = openSync(file, 'w')
  const block = Buffer.alloc(64 * 1024)
  try {
    for (;;) writeSync(fd, block)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err
  } finally {
    closeSync(fd)
  }
}

void t.test('unwritable – a full disk: the admin call says the file system is full, the log too; freed, it works again', { skip }, async t => {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-full-'))
  mount(dir, 'size=4m,mode=0755')
  t.teardown(() => { spawnSync('umount', [dir]); rmSync(dir, { recursive: true, force: true }) })
  const logs: Array<Record<string, unknown>> = []
  const agent = await start(dir, logs)
  const admin = new AdminClient(join(dir, 'a.sock'))
  t.teardown(async () => { admin.close(); await agent.stop() })
  fill(join(dir, 'ballast'))
  const entry = { spiffe_id: 'spiffe://plant.example/app', selectors: ['unix:uid:1001'], hint: 'x'.repeat(1000) }
  const err = await admin.createEntry(entry).catch((e: unknown) => e as { code: string, message: string })
  t.match(err, { code: 'ERR_STORE_UNWRITABLE', message: `the agent could not create an entry: the file system of ${join(dir, 'data')} is full (no blocks free)` })
  t.match(logs.find(line => line.call === 'create an entry'), { reason: `the file system of ${join(dir, 'data')} is full (no blocks free)` }, 'the log says so')
  rmSync(join(dir, 'ballast'))
  t.match(await admin.createEntry(entry), { spiffe_id: 'spiffe://plant.example/app' }, 'with space again, the same call succeeds')
})

void t.test('unwritable – a read-only data directory at start: the agent says read-only, not "disk I/O error"', { skip }, async t => {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-ro-'))
  mount(dir, 'size=4m,mode=0755')
  t.teardown(() => { spawnSync('umount', [dir]); rmSync(dir, { recursive: true, force: true }) })
  await (await start(dir, [])).stop()
  const remount = spawnSync('mount', ['-o', 'remount,ro', dir], { encoding: 'utf8' })
  t.equal(remount.status, 0, remount.stderr)
  await t.rejects(start(dir, []), {
    code: 'ERR_STORE_UNAVAILABLE',
    message: `cannot use ${join(dir, 'data', 'registrations.sqlite3')}: ${join(dir, 'data')} is on a read-only file system, or point --data-dir elsewhere`
  })
})
