import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

// The agent and the CLI as an operator uses them: the built `chaperone` bin, a real agent process, its sockets.
const root = join(__dirname, '..', '..')
const bin = join(root, 'dist', 'cli', 'main.js')
const skip = existsSync(bin) ? false : 'not built: run `npm run build` (npm test does)'
const dir = mkdtempSync(join(tmpdir(), 'chaperone-cli-'))
const dataDir = join(dir, 'data')
const adminSocket = join(dir, 'run', 'admin.sock')
const agentArgs = ['agent', 'run', '--trust-domain', 'plant.example', '--data-dir', dataDir, '--admin-socket', adminSocket, '--socket', join(dir, 'run', 'workload.sock'), '--server-socket', join(dir, 'run', 'server.sock')]
let agent: ChildProcess | undefined
t.teardown(() => {
  agent?.kill('SIGKILL')
  rmSync(dir, { recursive: true, force: true })
})

interface Run { status: number | null, stdout: string, stderr: string }

function chaperone (...args: string[]): Run {
  const result = spawnSync(process.execPath, [bin, ...args, ...(args[0] === 'agent' ? [] : ['--admin-socket', adminSocket])], { encoding: 'utf8', timeout: 20_000 })
  return { status: result.status, stdout: result.stdout, stderr: result.stderr }
}

function json<T> (run: Run): T {
  if (run.status !== 0) throw new Error(`chaperone failed (${String(run.status)}): ${run.stderr}`)
  return JSON.parse(run.stdout) as T
}

/** What the last agent started printed. */
let started = ''

async function startAgent (): Promise<ChildProcess> {
  const child = spawn(process.execPath, [bin, ...agentArgs], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout?.on('data', (chunk: Buffer) => { out += chunk.toString() })
  const deadline = Date.now() + 20_000
  while (!out.includes('data directory')) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`agent did not start: ${out}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  started = out
  return child
}

interface Entry { id: string, spiffe_id: string, selectors: string[], revision: number, x509_svid_ttl: number, hint: string, served: boolean }
interface CaStatus { authorities: Array<{ kind: string, state: string, fingerprint256: string, kid: string }>, bundle_sequence: number }

void t.test('cli – the agent serves the admin API; entries, bundle and CA survive kill -9', { skip }, async t => {
  agent = await startAgent()
  t.equal(statSync(adminSocket).mode & 0o777, 0o600, 'the admin socket is owner-only')
  t.equal(statSync(join(dir, 'run', 'server.sock')).mode & 0o777, 0o770, 'the SPIRE server API socket is owner and group, as SPIRE\'s')
  t.equal(statSync(dataDir).mode & 0o777, 0o700, 'the data directory is owner-only')
  t.match(started, `  SPIRE API     : ${join(dir, 'run', 'server.sock')} (0770, owner and the agent's group; spire-server -socketPath)\n`, 'it says where SPIRE\'s tools find it')
  t.match(started, /\n {2}agent ID {6}: spiffe:\/\/plant\.example\/spire\/agent\/chaperone\/[0-9a-f]{32} \(the parent ID of entries this agent serves\)\n/)

  const created = json<Entry>(chaperone('entry', 'create', '--spiffe-id', 'spiffe://plant.example/app-a', '--selector', 'unix:uid:1001', '--x509-ttl', '600', '--json'))
  t.match(created, { spiffe_id: 'spiffe://plant.example/app-a', selectors: ['unix:uid:1001'], x509_svid_ttl: 600, revision: 0 })
  const second = json<Entry>(chaperone('entry', 'create', '--spiffe-id', 'spiffe://plant.example/app-b', '--selector', 'unix:uid:1002', '--selector', 'unix:gid:50', '--json'))
  const updated = json<Entry>(chaperone('entry', 'update', created.id, '--hint', 'frontend', '--json'))
  t.match(updated, { id: created.id, hint: 'frontend', revision: 1 })
  const shown = chaperone('entry', 'show', second.id)
  t.equal(shown.status, 0)
  t.match(shown.stdout, /SPIFFE ID {5}: spiffe:\/\/plant\.example\/app-b\n/)
  t.match(shown.stdout, /Selector {6}: unix:gid:50\nSelector {6}: unix:uid:1002/)
  t.same(json<Entry[]>(chaperone('entry', 'list', '--selector', 'unix:uid:1002', '--json')).map(e => e.id), [second.id])
  t.match(shown.stdout, /\nServed {8}: yes, by this agent\n/, 'an entry without a parent is this agent\'s')

  // SPIRE's other fields, and what `show` says of entries this agent does not issue.
  const spireFields = json<Entry>(chaperone('entry', 'create', '--spiffe-id', 'spiffe://plant.example/fields', '--selector', 'unix:uid:1003', '--admin', '--downstream',
    '--expires-at', '2030-01-01T00:00:00Z', '--json'))
  t.match(spireFields, { admin: true, downstream: true, store_svid: false, expires_at: 1893456000, served: true, not_served_reason: '' })
  t.match(chaperone('entry', 'show', spireFields.id).stdout, /\nAdmin {9}: true\nDownstream {4}: true\nExpires {7}: 2030-01-01T00:00:00\.000Z\n/)
  t.match(json<Entry>(chaperone('entry', 'update', spireFields.id, '--no-admin', '--expires-at', 'never', '--store-svid', '--json')),
    { admin: false, downstream: true, store_svid: true, expires_at: 0, served: false, not_served_reason: /for an SVIDStore/ }, '--no-admin and never clear; --store-svid sets')
  const elsewhere = json<Entry>(chaperone('entry', 'create', '--spiffe-id', 'spiffe://plant.example/elsewhere', '--selector', 'unix:uid:1004',
    '--parent-id', 'spiffe://plant.example/spire/agent/x509pop/another-device', '--json'))
  t.match(chaperone('entry', 'show', elsewhere.id).stdout,
    /\nServed {8}: no: its parent ID spiffe:\/\/plant\.example\/spire\/agent\/x509pop\/another-device does not lead to this agent's ID \(spiffe:\/\/plant\.example\/spire\/agent\/chaperone\/[0-9a-f]{32}\)/)
  t.match(chaperone('entry', 'create', '--spiffe-id', 'spiffe://plant.example/x', '--selector', 'unix:uid:1', '--expires-at', 'soon').stderr, /an expiry is an ISO 8601 time/)
  for (const id of [spireFields.id, elsewhere.id]) chaperone('entry', 'delete', id)

  // This test process's own uid as a workload: its SVID must come under the same bundle after kill -9.
  json<Entry>(chaperone('entry', 'create', '--spiffe-id', 'spiffe://plant.example/cli-test', '--selector', `unix:uid:${process.getuid?.() ?? 0}`, '--json'))
  const fetchSvid = (): { bundle: string, svids: Array<{ spiffe_id: string }> } => {
    const out = mkdtempSync(join(dir, 'svid-'))
    const run = spawnSync(process.execPath, [bin, 'api', 'fetch', 'x509', '--socket', `unix://${join(dir, 'run', 'workload.sock')}`, '--write', out, '--json'], { encoding: 'utf8', timeout: 20_000 })
    if (run.status !== 0) throw new Error(`api fetch failed: ${run.stderr}`)
    return { bundle: readFileSync(join(out, 'bundle.0.pem'), 'utf8'), ...(JSON.parse(run.stdout) as { svids: Array<{ spiffe_id: string }> }) }
  }
  const before = fetchSvid()
  t.same(before.svids.map(s => s.spiffe_id), ['spiffe://plant.example/cli-test'])
  const pem = chaperone('bundle', 'show')
  t.match(pem.stdout, /^-----BEGIN CERTIFICATE-----/)
  const spiffeBundle = JSON.parse(chaperone('bundle', 'show', '--format', 'spiffe').stdout) as { keys: Array<{ use: string }> }
  t.same([...new Set(spiffeBundle.keys.map(k => k.use))].sort(), ['jwt-svid', 'x509-svid'])
  const ca = json<CaStatus>(chaperone('ca', 'show', '--json'))
  t.ok(ca.authorities.some(a => a.kind === 'x509' && a.state === 'active'), 'an active X.509 authority')
  t.ok(ca.authorities.some(a => a.kind === 'jwt' && a.state === 'active'), 'an active JWT key')
  t.match(chaperone('ca', 'show').stdout, /Trust domain {4}: plant\.example\n/)
  const status = json<{ open_connections: number, refused: Record<string, number>, max_connections_per_uid: number, idle_timeout_ms: number }>(chaperone('agent', 'status', '--json', '--admin-socket', adminSocket))
  t.match(status, { refused: {}, max_connections_per_uid: 1024, idle_timeout_ms: 5000 }, 'agent status: the Workload API\'s limits, nothing refused')
  t.match(chaperone('agent', 'status', '--admin-socket', adminSocket).stdout, /^Workload API connections : \d+ open\nLimits {19}: 1024 per uid, 256 descriptors reserved .*\nRefused since start {6}: none\n/)

  agent.kill('SIGKILL')
  await once(agent, 'exit')
  agent = await startAgent()
  t.same(json<Entry[]>(chaperone('entry', 'list', '--spiffe-id', 'spiffe://plant.example/app-a', '--json')).map(e => [e.id, e.revision]), [[created.id, 1]], 'every entry survives kill -9')
  t.same(json<Entry[]>(chaperone('entry', 'list', '--spiffe-id', 'spiffe://plant.example/app-b', '--json')).map(e => [e.id, e.revision]), [[second.id, 0]])
  t.same(json<CaStatus>(chaperone('ca', 'show', '--json')), ca, 'the same CA and JWT keys, nothing to re-trust')
  t.equal(chaperone('bundle', 'show').stdout, pem.stdout, 'the same bundle')
  t.equal(fetchSvid().bundle, before.bundle, 'callers get SVIDs under the same bundle after kill -9')

  const deleted = chaperone('entry', 'delete', second.id)
  t.equal(deleted.status, 0)
  t.match(deleted.stdout, /deleted entry .* \(spiffe:\/\/plant\.example\/app-b\)/)
  agent.kill('SIGTERM')
  await once(agent, 'exit')
  t.equal(agent.exitCode, 0, 'SIGTERM stops the agent cleanly')
  t.notOk(existsSync(adminSocket), 'and removes its socket')
})

void t.test('cli – bad input names the problem and exits 2; an unreachable agent exits 1', { skip }, async t => {
  agent = await startAgent()
  const cases: Array<[string[], RegExp]> = [
    [['entry', 'create', '--spiffe-id', 'spiffe://Plant.example/x', '--selector', 'unix:uid:1'], /lowercase/],
    [['entry', 'create', '--spiffe-id', 'spiffe://plant.example/a//b', '--selector', 'unix:uid:1'], /empty segments/],
    [['entry', 'create', '--spiffe-id', 'spiffe://plant.example/x', '--selector', 'unix:uid:abc'], /unix:uid/],
    [['entry', 'create', '--spiffe-id', 'spiffe://plant.example/x', '--selector', 'nope'], /selector/i],
    [['entry', 'create', '--spiffe-id', 'spiffe://plant.example/x', '--selector', 'unix:uid:1', '--x509-ttl', '0'], /argument '0' is invalid\. a TTL is a duration: whole seconds \(30\) or 30s, 5m, 1h, 1h30m\./],
    [['entry', 'create', '--spiffe-id', 'spiffe://plant.example/x', '--selector', 'unix:uid:1', '--jwt-ttl', '-5'], /a TTL is a duration/],
    [['entry', 'create', '--spiffe-id', 'spiffe://plant.example/x'], /at least one --selector/],
    [['entry', 'create', '--selector', 'unix:uid:1'], /--spiffe-id/],
    [['entry', 'show', 'no-such-entry'], /no-such-entry/],
    [['entry', 'delete', 'no-such-entry'], /no-such-entry/],
    [['entry', 'update', 'no-such-entry', '--hint', 'x'], /no-such-entry/],
    [['entry', 'update', 'no-such-entry'], /nothing to update/],
    [['bundle', 'show', '--format', 'der'], /Allowed choices are pem, spiffe/],
    [['frobnicate'], /unknown command/]
  ]
  for (const [args, reason] of cases) {
    const run = chaperone(...args)
    t.equal(run.status, 2, `${args.join(' ')}: exit 2`)
    t.match(run.stderr, reason, `${args.join(' ')}: names the problem`)
  }
  // A usage error is its line and where the usage is, not the whole help.
  t.equal(chaperone('entry', 'create', '--spiffe-id', 'spiffe://plant.example/x', '--selector', 'unix:uid:1', '--x509-ttl', '1 hour').stderr,
    "error: option '--x509-ttl <duration>' argument '1 hour' is invalid. a TTL is a duration: whole seconds (30) or 30s, 5m, 1h, 1h30m.\n(see `chaperone entry create --help`)\n")
  t.equal(chaperone('frobnicate').stderr, "error: unknown command 'frobnicate'\n(see `chaperone --help`)\n")
  const hourly = json<Entry>(chaperone('entry', 'create', '--spiffe-id', 'spiffe://plant.example/hourly', '--selector', 'unix:uid:8', '--x509-ttl', '1h', '--jwt-ttl', '5m', '--json'))
  t.match(hourly, { x509_svid_ttl: 3600 }, 'TTLs as durations, as in the configuration files')
  const once1 = chaperone('entry', 'create', '--spiffe-id', 'spiffe://plant.example/dup', '--selector', 'unix:uid:7')
  t.equal(once1.status, 0)
  const twice = chaperone('entry', 'create', '--spiffe-id', 'spiffe://plant.example/dup', '--selector', 'unix:uid:7')
  t.equal(twice.status, 2, 'a duplicate entry exits 2')
  t.match(twice.stderr, /duplicate|already/i)
  const otherDomain = chaperone('entry', 'create', '--spiffe-id', 'spiffe://elsewhere.example/x', '--selector', 'unix:uid:1')
  t.equal(otherDomain.status, 2)
  t.match(otherDomain.stderr, /plant\.example/)

  agent.kill('SIGTERM')
  await once(agent, 'exit')
  const down = chaperone('entry', 'list')
  t.equal(down.status, 1, 'an unreachable agent is not bad input')
  t.match(down.stderr, /cannot reach the agent's admin API at .*admin\.sock: no socket there; is the agent running/)

  const noTd = spawnSync(process.execPath, [bin, 'agent', 'run', '--data-dir', dataDir, '--admin-socket', adminSocket], { encoding: 'utf8' })
  t.equal(noTd.status, 2)
  t.match(noTd.stderr, /missing required field "trustDomain"/)
  const badFile = spawnSync(process.execPath, [bin, 'agent', 'run', '--config', join(dir, 'absent.yaml')], { encoding: 'utf8' })
  t.equal(badFile.status, 2)
  t.match(badFile.stderr, /absent\.yaml: cannot read the file/)
})
