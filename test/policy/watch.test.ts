import t from 'tap'
import { once } from 'node:events'
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { PolicyWatcher } from '../../policy/watch'
import type { ReloadResult } from '../../policy/watch'
import { thrown } from '../helpers/errors'

// Hot reload on a real file in a temporary directory: fs watching, SIGHUP delivered to this process, and the
// metrics as prom-client renders them.

const dir = mkdtempSync(join(tmpdir(), 'chaperone-policy-watch-'))
t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })

const TD = 'spiffe://plant.example'
const policyText = (from: string, comment = ''): string => `${comment}version: 1
rules:
  - name: fe-api
    from: [${TD}/${from}]
    to: [${TD}/api]
    action: allow
`
const FE = { from: `${TD}/frontend`, to: `${TD}/api` }

function setUp (t: { teardown: (fn: () => void) => void }, name: string, options: { watch?: boolean } = {}): { file: string, watcher: PolicyWatcher, logs: Array<Record<string, unknown>> } {
  const file = join(dir, name)
  writeFileSync(file, policyText('frontend'))
  const logs: Array<Record<string, unknown>> = []
  const logger = pino({ level: 'debug' }, { write: (line: string) => { logs.push(JSON.parse(line) as Record<string, unknown>) } })
  const watcher = new PolicyWatcher(file, { logger, debounceMs: 20, ...options })
  t.teardown(() => { watcher.close() })
  return { file, watcher, logs }
}

/** The next reload; the timer also keeps this process alive, since the watcher itself does not hold it open. */
async function nextReload (watcher: PolicyWatcher): Promise<ReloadResult> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error('no reload within 10 s')) }, 10_000) })
  try {
    return (await Promise.race([once(watcher, 'reload'), timeout]))[0] as ReloadResult
  } finally {
    clearTimeout(timer)
  }
}

void t.test('policy reload – a valid edit of the watched file takes effect and is counted, with the new hash', async t => {
  const { file, watcher, logs } = setUp(t, 'valid.yaml')
  const first = watcher.policy.hash
  t.equal(watcher.decide(FE).allow, true)
  t.match(logs, [{ event: 'policy_loaded', hash: first, rules: 1 }])
  const reloaded = nextReload(watcher)
  writeFileSync(file, policyText('other'))
  const result = await reloaded
  t.match(result, { result: 'ok', trigger: 'watch', previousHash: first })
  t.not(result.hash, first)
  t.equal(watcher.policy.hash, result.hash)
  t.equal(watcher.decide(FE).allow, false, 'the new policy is in force')
  t.equal(watcher.decide({ from: `${TD}/other`, to: `${TD}/api` }).allow, true)
  t.match(logs.at(-1), { event: 'policy_reloaded', hash: result.hash, previousHash: first, trigger: 'watch' })
  const metrics = await watcher.registry.metrics()
  t.match(metrics, /chaperone_policy_reloads_total\{result="ok"\} 1\n/)
  t.match(metrics, /chaperone_policy_reloads_total\{result="failed"\} 0\n/)
  t.match(metrics, new RegExp(`chaperone_policy_info\\{hash="${result.hash}"\\} 1\\n`))
  t.notMatch(metrics, first, 'the old hash is no longer reported')
})

void t.test('policy reload – an invalid file is rejected with its problems logged; the last good policy stays', async t => {
  const { file, watcher, logs } = setUp(t, 'invalid.yaml')
  const good = watcher.policy.hash
  const reloaded = nextReload(watcher)
  writeFileSync(file, policyText('frontend').replace('action: allow', 'action: allow\n    colour: red'))
  const result = await reloaded
  t.match(result, { result: 'failed', hash: good, previousHash: good })
  t.match(result.problems, [{ severity: 'error', message: 'unknown field', rule: 'fe-api', location: `${file}:7:5` }])
  t.equal(watcher.policy.hash, good)
  t.equal(watcher.decide(FE).allow, true, 'the last good policy still decides')
  t.match(logs.at(-1), { level: 50, event: 'policy_reload_failed', hash: good, problems: [`${file}:7:5: error: rule "fe-api": colour: unknown field`] })
  t.match(await watcher.registry.metrics(), /chaperone_policy_reloads_total\{result="failed"\} 1\n/)
  // A deleted file is a failed reload too, not an empty policy.
  const deleted = watcher.reload()
  rmSync(file)
  t.equal(watcher.reload().result, 'failed')
  t.equal(deleted.result, 'failed')
  t.equal(watcher.decide(FE).allow, true)
})

void t.test('policy reload – reload() on demand (the CLI calls it on SIGHUP); a file with the same meaning is reported unchanged', async t => {
  const handlers = process.listenerCount('SIGHUP')
  const { file, watcher } = setUp(t, 'sighup.yaml', { watch: false })
  t.equal(process.listenerCount('SIGHUP'), handlers, 'a watcher used as a library takes no signal for itself')
  writeFileSync(file, policyText('frontend', '# reformatted, same rules\n'))
  const unchanged = nextReload(watcher)
  watcher.reload('sighup')
  t.match(await unchanged, { result: 'unchanged', trigger: 'sighup' })
  writeFileSync(file, policyText('other'))
  const changed = nextReload(watcher)
  watcher.reload('sighup')
  t.match(await changed, { result: 'ok', trigger: 'sighup' })
  t.equal(watcher.decide(FE).allow, false)
  t.match(await watcher.registry.metrics(), /chaperone_policy_reloads_total\{result="unchanged"\} 1\n/)
})

void t.test('policy reload – an editor\'s write-then-rename is seen; other files in the directory are ignored', async t => {
  const { file, watcher } = setUp(t, 'renamed.yaml')
  let reloads = 0
  watcher.on('reload', () => { reloads++ })
  writeFileSync(join(dir, 'unrelated.txt'), 'x')
  await new Promise(resolve => setTimeout(resolve, 200))
  t.equal(reloads, 0, 'a change to another file is not a reload')
  const reloaded = nextReload(watcher)
  writeFileSync(`${file}.tmp`, policyText('other'))
  renameSync(`${file}.tmp`, file)
  t.match(await reloaded, { result: 'ok' })
  t.equal(watcher.decide({ from: `${TD}/other`, to: `${TD}/api` }).allow, true)
})

void t.test('policy reload – an invalid file at start is an error; a watcher never listens for SIGHUP itself', async t => {
  const file = join(dir, 'bad-start.yaml')
  writeFileSync(file, 'version: 2\n')
  const err = thrown(() => new PolicyWatcher(file))
  t.equal(err.code, 'ERR_POLICY_INVALID')
  t.match(err.message, `${file}:1:10: error: version: must be 1`)
  const before = process.listenerCount('SIGHUP')
  const { watcher } = setUp(t, 'close.yaml')
  t.equal(process.listenerCount('SIGHUP'), before, 'the CLI wires the signal, not the library')
  watcher.close()
  t.equal(process.listenerCount('SIGHUP'), before)
})
