import t from 'tap'
import type { Test } from 'tap'
import { validateJwtSvid, verifyX509Svid } from '../../../spiffe'
import type { SpiffeBundle } from '../../../spiffe'
import { activationTime, preparationTime } from '../../../agent/ca/rotation'
import type { AuthorityStatus, CaStatus } from '../../../agent/ca'
import { ManualClock, capturedLogger, openCa, tempDir, td } from './fixtures/ca-fixtures'

const CA_TTL = 3600
const STEP = 97
const workload = td.id('/rotating')

interface Seen {
  prepared?: Date
  active?: Date
  gone?: Date
}

/** The moment each authority or key was first seen in each state, and first seen missing. */
function track (seen: Map<string, Seen>, entries: Array<{ id: string, state: string }>, now: Date): void {
  for (const entry of entries) {
    const record = seen.get(entry.id) ?? {}
    if (entry.state === 'prepared') record.prepared ??= now
    if (entry.state === 'active') record.active ??= now
    seen.set(entry.id, record)
  }
  for (const [id, record] of seen) if (!entries.some(entry => entry.id === id)) record.gone ??= now
}

const scheduled = (entry: { notBefore: Date, notAfter: Date }): { id: string, state: 'active', notBefore: Date, notAfter: Date } =>
  ({ id: '', state: 'active', notBefore: entry.notBefore, notAfter: entry.notAfter })

/** `event` happened at the first step at or after `due`. */
function atFirstStepAfter (t: Test, event: Date | undefined, due: Date, what: string): void {
  t.ok(event !== undefined && event >= due && event.getTime() - due.getTime() < STEP * 1000,
    `${what}: due ${due.toISOString()}, happened ${event?.toISOString() ?? 'never'}`)
}

void t.test('rotation clock – three CA lifetimes: every unexpired SVID and token verifies at every step', async t => {
  const clock = new ManualClock()
  const ca = await openCa(t, { clock: clock.read, caTtlSeconds: CA_TTL, x509SvidTtlSeconds: 600, jwtSvidTtlSeconds: 300 })
  const svids: Array<{ chain: Buffer[], expiresAt: Date }> = []
  const tokens: Array<{ token: string, expiresAt: Date }> = []
  const authorities = new Map<string, Seen>()
  const jwtKeys = new Map<string, Seen>()
  const history: CaStatus[] = []
  const bundles: SpiffeBundle[] = []
  ca.onBundleChange(bundle => bundles.push(bundle))
  let activations = 0
  ca.onActivate(() => activations++)
  const initialSequence = ca.bundle().sequence ?? 0
  let sequence = initialSequence
  const end = clock.now.getTime() + 3 * CA_TTL * 1000
  let failures = 0
  while (clock.now.getTime() < end) {
    await ca.rotate()
    const now = clock.now
    const status = ca.status()
    history.push(status)
    track(authorities, status.x509.map(a => ({ id: a.fingerprint256, state: a.state })), now)
    track(jwtKeys, status.jwt.map(k => ({ id: k.kid, state: k.state })), now)
    const bundle = ca.bundle()
    if ((bundle.sequence ?? 0) < sequence) t.fail(`sequence went down at ${now.toISOString()}`)
    sequence = bundle.sequence ?? 0
    svids.push(await ca.mintX509Svid({ spiffeId: workload }))
    tokens.push(await ca.mintJwtSvid({ spiffeId: workload, audience: ['peer'] }))
    for (const svid of svids.filter(s => s.expiresAt >= now)) {
      try {
        verifyX509Svid(svid.chain, bundle, { now })
      } catch (err) {
        failures++
        t.fail(`an SVID valid until ${svid.expiresAt.toISOString()} failed at ${now.toISOString()}: ${(err as Error).message}`)
      }
    }
    for (const token of tokens.filter(tk => tk.expiresAt > now)) {
      await validateJwtSvid(token.token, bundle, 'peer', { now }).catch((err: Error) => {
        failures++
        t.fail(`a token valid until ${token.expiresAt.toISOString()} failed at ${now.toISOString()}: ${err.message}`)
      })
    }
    clock.advance(STEP)
  }
  t.equal(failures, 0, `${svids.length} SVIDs and ${tokens.length} tokens checked at ${history.length} steps`)

  // The schedule, checked against what was observed: each successor prepared at half, activated at 5/6 of its
  // predecessor's life; each authority gone at the first step after its NotAfter.
  const byFingerprint = new Map<string, AuthorityStatus>(history.flatMap(status => status.x509.map(a => [a.fingerprint256, a])))
  const order = [...byFingerprint.values()].sort((a, b) => a.notBefore.getTime() - b.notBefore.getTime())
  t.ok(order.length >= 5, `${order.length} authorities over three lifetimes`)
  for (let i = 1; i < order.length; i++) {
    const previous = scheduled(order[i - 1])
    const seen = authorities.get(order[i].fingerprint256) ?? {}
    atFirstStepAfter(t, seen.prepared, preparationTime(previous), `authority ${i} prepared`)
    if (seen.active !== undefined) atFirstStepAfter(t, seen.active, activationTime(previous), `authority ${i} activated`)
  }
  for (const authority of order) {
    const gone = authorities.get(authority.fingerprint256)?.gone
    if (gone !== undefined) atFirstStepAfter(t, gone, new Date(authority.notAfter.getTime() + 1), 'authority dropped after its NotAfter')
  }
  const keys = [...jwtKeys.keys()]
  t.ok(keys.length >= 5, `${keys.length} JWT keys over three lifetimes`)
  t.ok(history.every(status => status.x509.filter(a => a.state === 'active').length === 1 && status.jwt.filter(k => k.state === 'active').length === 1),
    'always exactly one active authority and JWT key')
  t.ok(history.some(status => status.x509.some(a => a.state === 'prepared' && a.activatesAt !== undefined)), 'a prepared authority says when it activates')
  t.equal(activations, order.length - 1, 'onActivate fired once per new active authority')
  const announced = bundles.map(b => b.sequence ?? 0)
  t.same(announced, announced.map((_, i) => initialSequence + 1 + i), 'every change bumped the sequence by one and was announced')
  t.equal(announced.at(-1), ca.bundle().sequence)
  t.ok(announced.length >= 5, `${announced.length} bundle changes (preparations, and drops, which coincide with the next preparation)`)
})

void t.test('rotation clock – rotate() is idempotent at a fixed time', async t => {
  const clock = new ManualClock()
  const ca = await openCa(t, { clock: clock.read, caTtlSeconds: CA_TTL })
  t.equal(await ca.rotate(), false, 'nothing due right after open')
  clock.advance(CA_TTL / 2)
  t.equal(await ca.rotate(), true, 'prepares at half life')
  const sequence = ca.bundle().sequence
  t.equal(await ca.rotate(), false, 'and only once')
  t.equal(ca.bundle().sequence, sequence)
})

void t.test('rotation clock – a mint finds rotation due and applies it first', async t => {
  const clock = new ManualClock()
  const ca = await openCa(t, { clock: clock.read, caTtlSeconds: CA_TTL })
  const first = ca.status().x509[0].fingerprint256
  clock.advance(CA_TTL * 5 / 6 + 1)
  const svid = await ca.mintX509Svid({ spiffeId: workload })
  const active = ca.status().x509.find(a => a.state === 'active')
  t.not(active?.fingerprint256, first, 'the successor was prepared and activated')
  t.equal(verifyX509Svid(svid.chain, ca.bundle(), { now: clock.now }).toString(), workload.toString())
})

void t.test('rotation clock – after a long downtime the CA catches up at open and says so', async t => {
  const clock = new ManualClock()
  const dataDir = tempDir(t)
  const before = await openCa(t, { dataDir, clock: clock.read, caTtlSeconds: CA_TTL })
  const old = activeFingerprint(before.status())
  before.close()
  clock.advance(CA_TTL * 10)
  const { logger, records } = capturedLogger()
  const after = await openCa(t, { dataDir, clock: clock.read, caTtlSeconds: CA_TTL, logger })
  const status = after.status()
  t.equal(status.x509.length, 1, 'expired authorities dropped')
  t.not(activeFingerprint(status), old, 'a new authority is active')
  t.ok(status.x509[0].notAfter > clock.now)
  t.ok(records.some(r => r.level === 40 && /X.509 authority rotation catching up: the active key expired at .* while the agent was not running/.test(r.msg)),
    'a warning explains the catch-up')
  const svid = await after.mintX509Svid({ spiffeId: workload })
  t.equal(verifyX509Svid(svid.chain, after.bundle(), { now: clock.now }).toString(), workload.toString())
  const { token } = await after.mintJwtSvid({ spiffeId: workload, audience: ['x'] })
  await t.resolves(validateJwtSvid(token, after.bundle(), 'x', { now: clock.now }))
})

function activeFingerprint (status: CaStatus): string | undefined {
  return status.x509.find(a => a.state === 'active')?.fingerprint256
}
