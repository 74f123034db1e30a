import t from 'tap'
import type { Test } from 'tap'
import { spawn } from 'node:child_process'
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { chmodSync, mkdirSync, readFileSync, readdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { decodeProtectedHeader } from 'jose'
import { parseTrustDomain, verifyX509Svid } from '../../../spiffe'
import type { AgentCa, CaStatus } from '../../../agent/ca'
import { ManualClock, capturedLogger, openCa, tempDir, td } from './fixtures/ca-fixtures'

const workload = td.id('/kept')

/** What must survive a restart: authorities, JWT keys, sequence. */
function identity (status: CaStatus): unknown {
  return {
    x509: status.x509.map(a => [a.fingerprint256, a.state]),
    jwt: status.jwt.map(k => [k.kid, k.state]),
    sequence: status.bundleSequence
  }
}

/** A CA with a prepared successor (so there are two authorities and two JWT keys), closed again. */
async function rotatedState (t: Test, dataDir: string, clock = new ManualClock()): Promise<CaStatus> {
  const ca = await openCa(t, { dataDir, clock: clock.read, caTtlSeconds: 3600 })
  clock.advance(1800)
  await ca.rotate()
  const status = ca.status()
  ca.close()
  return status
}

void t.test('persistence – a reopened CA has the same authorities, JWT keys and sequence; old SVIDs still verify', async t => {
  const dataDir = tempDir(t)
  const clock = new ManualClock()
  const first = await openCa(t, { dataDir, clock: clock.read, caTtlSeconds: 3600 })
  const svid = await first.mintX509Svid({ spiffeId: workload })
  const { token } = await first.mintJwtSvid({ spiffeId: workload, audience: ['a'] })
  clock.advance(1800)
  await first.rotate()
  const before = first.status()
  first.close()
  const second = await openCa(t, { dataDir, clock: clock.read, caTtlSeconds: 3600 })
  t.same(identity(second.status()), identity(before))
  t.equal(await second.rotate(), false, 'nothing to do after a restart at the same moment')
  t.equal(verifyX509Svid(svid.chain, second.bundle(), { now: clock.now }).toString(), workload.toString())
  t.ok(second.bundle().jwt.findKey(decodeProtectedHeader(token).kid ?? ''), 'the token\'s key is still published')
})

void t.test('persistence – the CA directory is 0700 and every file in it 0600', async t => {
  const dataDir = tempDir(t)
  await rotatedState(t, dataDir)
  const dir = join(dataDir, 'ca')
  t.equal(statSync(dir).mode & 0o777, 0o700)
  const files = readdirSync(dir)
  t.same(files.filter(name => name.startsWith('x509-')).length, 4, 'two authorities: key and certificate each')
  t.same(files.filter(name => name.startsWith('jwt-')).length, 2, 'two JWT keys')
  for (const name of files) t.equal(statSync(join(dir, name)).mode & 0o777, 0o600, `${name} is 0600`)
  t.match(JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')), { version: 1, trustDomain: 'plant.example', upstream: false, sequence: 2 })
})

void t.test('persistence – files left by an interrupted write are ignored (and logged at debug)', async t => {
  const dataDir = tempDir(t)
  const before = await rotatedState(t, dataDir)
  const dir = join(dataDir, 'ca')
  const orphan = randomBytes(16).toString('hex')
  writeFileSync(join(dir, `x509-${orphan}.key.pem`), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 })
  writeFileSync(join(dir, 'state.json.tmp'), '{"version":1,"trustDo', { mode: 0o600 })
  const { logger, records } = capturedLogger()
  const ca = await openCa(t, { dataDir, logger, clock: new ManualClock(new Date('2031-03-01T00:30:00Z')).read, caTtlSeconds: 3600 })
  t.same(identity(ca.status()), identity(before))
  const note = records.find(r => r.level === 20 && /ignoring files state.json does not name/.test(r.msg))
  t.same((note?.leftovers as string[] | undefined)?.sort(), ['state.json.tmp', `x509-${orphan}.key.pem`])
  await ca.mintX509Svid({ spiffeId: workload })
})

/** Runs the rotating child until it has saved `sequence`, then kills it (SIGKILL) a random moment later, mid-write or not. */
async function killMidRotation (dataDir: string, sequence: number): Promise<number> {
  const typescript = process.execArgv.filter(arg => arg.includes('@tapjs/typescript'))
  const child = spawn(process.execPath, [...typescript, join(__dirname, 'fixtures', 'rotate-forever.ts'), dataDir], { stdio: ['ignore', 'pipe', 'inherit'] })
  let saved = 0
  return await new Promise<number>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      saved = Number(chunk.toString().trim().split('\n').at(-1))
      if (saved >= sequence) setTimeout(() => { child.kill('SIGKILL') }, Math.random() * 20)
    })
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(saved)
      else reject(new Error(`the child exited by itself (${String(code)})`))
    })
  })
}

void t.test('persistence – a CA killed (SIGKILL) in the middle of rotations reopens consistent', async t => {
  await Promise.all([3, 4, 5].map(async sequence => {
    const dataDir = tempDir(t)
    const saved = await killMidRotation(dataDir, sequence)
    // Opened at a moment before all of it, so that opening only loads and checks (no rotation).
    const loaded = await openCa(t, { dataDir, caTtlSeconds: 600, clock: () => new Date('2031-01-01T00:00:00Z') })
    const status = loaded.status()
    loaded.close()
    t.ok(status.bundleSequence >= saved, `reopened at sequence ${status.bundleSequence}, the last one reported saved was ${saved}`)
    const active = status.x509.find(authority => authority.state === 'active')
    const now = new Date((active?.notBefore.getTime() ?? 0) + 60_000)
    const ca = await openCa(t, { dataDir, caTtlSeconds: 600, clock: () => now })
    const svid = await ca.mintX509Svid({ spiffeId: workload })
    t.equal(verifyX509Svid(svid.chain, ca.bundle(), { now }).toString(), workload.toString(), 'and it signs SVIDs that verify')
    ca.close()
  }))
})

/** Each defect of the saved state, and the message that must name it. */
const DEFECTS: Array<[string, (dir: string, manifest: Record<string, unknown>) => void, RegExp]> = [
  ['truncated JSON', dir => { writeFileSync(join(dir, 'state.json'), '{"version": 1, "trust') }, /state\.json: not valid JSON/],
  ['unknown version', (dir, m) => { save(dir, { ...m, version: 7 }) }, /"version" must be 1, found 7/],
  ['two active authorities', (dir, m) => { save(dir, { ...m, x509: (m.x509 as object[]).map(e => ({ ...e, state: 'active' })) }) }, /"x509" must hold exactly one active entry, found 2/],
  ['bad state', (dir, m) => { save(dir, { ...m, jwt: (m.jwt as object[]).map(e => ({ ...e, state: 'sleeping' })) }) }, /jwt\[0\]\.state must be one of active, prepared, retired, found "sleeping"/],
  ['path-like id', (dir, m) => { save(dir, { ...m, x509: [{ id: '../../etc/passwd', state: 'active' }] }) }, /x509\[0\]\.id must match/],
  ['negative sequence', (dir, m) => { save(dir, { ...m, sequence: -1 }) }, /"sequence" must be a whole number/],
  ['missing key file', dir => { unlinkSync(join(dir, readdirSync(dir).find(n => /^x509-.*\.key\.pem$/.test(n)) ?? '')) }, /x509-[0-9a-f]{32}\.key\.pem, named by the x509 entry [0-9a-f]{32} in state\.json, cannot be read \(ENOENT\)/],
  ['key of another certificate', dir => {
    const [a, b] = readdirSync(dir).filter(n => /^x509-.*\.key\.pem$/.test(n))
    writeFileSync(join(dir, a), readFileSync(join(dir, b)))
  }, /the key in x509-[0-9a-f]{32}\.key\.pem does not belong to the certificate/],
  ['JWT key of another type', dir => {
    const name = readdirSync(dir).find(n => n.startsWith('jwt-')) ?? ''
    writeFileSync(join(dir, name), generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }))
  }, /jwt-.*\.key\.pem does not hold the ec-p256 key state\.json says it does/],
  ['group-readable key', dir => { chmodSync(join(dir, readdirSync(dir).find(n => n.startsWith('jwt-')) ?? ''), 0o640) }, /is open to group or others \(mode 640\); run `chmod 600/],
  ['world-readable directory', dir => { chmodSync(dir, 0o755) }, /directory .* is open to group or others \(mode 755\); run `chmod 700/]
]

function save (dir: string, manifest: unknown): void {
  writeFileSync(join(dir, 'state.json'), JSON.stringify(manifest))
}

for (const [name, damage, message] of DEFECTS) {
  void t.test(`persistence – ${name}: ERR_CA_STATE_INVALID names the problem; nothing is rewritten`, async t => {
    const dataDir = tempDir(t)
    await rotatedState(t, dataDir)
    const dir = join(dataDir, 'ca')
    damage(dir, JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as Record<string, unknown>)
    const snapshot = (): Array<[string, string]> => readdirSync(dir).sort().map(file => [file, readFileSync(join(dir, file), 'latin1')])
    const before = snapshot()
    await t.rejects(openCa(t, { dataDir }), { code: 'ERR_CA_STATE_INVALID', message })
    t.same(snapshot(), before, 'the state directory is unchanged')
  })
}

void t.test('persistence – a state of another trust domain is refused with ERR_CA_STATE_MISMATCH', async t => {
  const dataDir = tempDir(t)
  await rotatedState(t, dataDir)
  await t.rejects(openCa(t, { dataDir, trustDomain: parseTrustDomain('other.example') }), {
    code: 'ERR_CA_STATE_MISMATCH', message: /belongs to trust domain plant\.example, not other\.example.*move .* away to start a new CA/
  })
})

void t.test('persistence – a failed save changes nothing, on disk or in memory, and reports ERR_CA_STATE_WRITE_FAILED', async t => {
  const dataDir = tempDir(t)
  const clock = new ManualClock()
  const { logger, records } = capturedLogger()
  const ca: AgentCa = await openCa(t, { dataDir, clock: clock.read, caTtlSeconds: 3600, logger })
  const before = ca.status()
  const manifest = readFileSync(join(dataDir, 'ca', 'state.json'), 'utf8')
  mkdirSync(join(dataDir, 'ca', 'state.json.tmp'))
  clock.advance(1800)
  await t.rejects(ca.rotate(), { code: 'ERR_CA_STATE_WRITE_FAILED', message: /cannot write the CA state in .*; the previous state is still in place/ })
  t.same(identity(ca.status()), identity(before), 'in memory: unchanged')
  t.equal(readFileSync(join(dataDir, 'ca', 'state.json'), 'utf8'), manifest, 'on disk: unchanged')
  const svid = await ca.mintX509Svid({ spiffeId: workload })
  t.ok(verifyX509Svid(svid.chain, ca.bundle(), { now: clock.now }), 'while the active authority is valid, a failed rotation does not stop minting')
  t.ok(records.some(r => r.level === 50 && /rotation failed; signing with the current key/.test(r.msg)), 'but it is logged as an error')
  clock.advance(1801)
  await t.rejects(ca.mintX509Svid({ spiffeId: workload }), { code: 'ERR_CA_STATE_WRITE_FAILED' }, 'once it has expired, the mint fails with the reason')
})
