/**
 * The CA under a remote upstream (AgentCaOptions.remoteUpstream): its authorities certified by the upstream, its JWT
 * keys published there before they are saved, the upstream's bundle served, kept on disk and updated, issuing on
 * while the upstream is away, and the rotation schedule following the lifetimes the upstream grants. The upstream is
 * a stand-in for the fleet's SPIRE server (fixtures/stand-in-upstream.ts); test/interop/device-ca.interop.ts runs the
 * same against a real SPIRE server.
 */
import t from 'tap'
import type { Test } from 'tap'
import { X509Certificate } from 'node:crypto'
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { generateKeyPair } from '../../../certs-test'
import { SpiffeBundle, X509Bundle, validateJwtSvid, verifyX509Svid } from '../../../spiffe'
import type { AgentCa, AgentCaOptions } from '../../../agent/ca'
import { activationTime, preparationTime } from '../../../agent/ca/rotation'
import { UpstreamError } from '../../../agent/upstream'
import { ManualClock, capturedLogger, openCa, tempDir, td } from './fixtures/ca-fixtures'
import { StandInUpstream } from './fixtures/stand-in-upstream'

const CA_TTL = 3600
const workload = td.id('/device/app')

/** A stand-in upstream, a data directory and a clock; `open` opens a CA under that upstream there (options override). */
interface Fleet {
  upstream: StandInUpstream
  clock: ManualClock
  dataDir: string
  open: (options?: Partial<AgentCaOptions>) => Promise<AgentCa>
}

function fleet (t: Test, options: { intermediate?: boolean } = {}): Fleet {
  const clock = new ManualClock()
  const upstream = new StandInUpstream(clock.read, options)
  const dataDir = tempDir(t)
  const open = async (overrides: Partial<AgentCaOptions> = {}): Promise<AgentCa> =>
    await openCa(t, { dataDir, clock: clock.read, caTtlSeconds: CA_TTL, remoteUpstream: upstream, ...overrides })
  return { upstream, clock, dataDir, open }
}

const unreachable = (): UpstreamError => new UpstreamError('ERR_UPSTREAM_UNREACHABLE', 'SPIRE server 10.0.0.1:8081 is unreachable: connect ECONNREFUSED')

interface ManifestView {
  sequence: number
  upstreamBundle?: string
  x509: Array<{ id: string, state: string }>
  jwt: Array<{ kid: string, state: string }>
}

const caDir = (dataDir: string): string => join(dataDir, 'ca')
const manifestPath = (dataDir: string): string => join(caDir(dataDir), 'state.json')
const manifest = (dataDir: string): ManifestView => JSON.parse(readFileSync(manifestPath(dataDir), 'utf8')) as ManifestView
const bundleFiles = (dataDir: string): string[] => readdirSync(caDir(dataDir)).filter(name => name.startsWith('upstream-bundle-'))

/** The CA issues: an X509-SVID that verifies to the upstream's roots (not only to what the CA serves), and a JWT-SVID its bundle validates. */
async function checkIssues (t: Test, f: Fleet, ca: AgentCa, what: string): Promise<Buffer[]> {
  const now = f.clock.now
  const svid = await ca.mintX509Svid({ spiffeId: workload })
  t.equal(verifyX509Svid(svid.chain, new X509Bundle(td, f.upstream.roots), { now }).toString(), workload.toString(), `${what}: the X509-SVID verifies to the upstream roots`)
  const { token } = await ca.mintJwtSvid({ spiffeId: workload, audience: ['peer'] })
  t.equal((await validateJwtSvid(token, ca.bundle(), 'peer', { now })).id.toString(), workload.toString(), `${what}: the JWT-SVID validates`)
  return svid.chain
}

for (const intermediate of [false, true]) {
  const how = intermediate ? 'through its intermediate' : 'by its root'
  void t.test(`remote upstream – a new CA's authority is certified ${how}; SVIDs chain to the upstream roots`, async t => {
    const f = fleet(t, { intermediate })
    const ca = await f.open()
    t.same(f.upstream.calls.filter(call => call.method === 'signAuthority'), [{ method: 'signAuthority', ttlSeconds: CA_TTL, granted: f.upstream.granted[0] }], 'asked once, for the CA TTL')
    t.same(ca.bundle().x509.authorities.map(cert => cert.raw), f.upstream.roots, 'the bundle\'s X.509 authorities are exactly the upstream roots')
    const chain = await checkIssues(t, f, ca, 'new CA')
    t.equal(chain.length, intermediate ? 3 : 2, intermediate ? '[leaf, authority, upstream intermediate]' : '[leaf, authority]')
    t.same(chain.slice(2), f.upstream.issuer.chain, 'the upstream\'s intermediates follow our authority, never its root')
    const authority = new X509Certificate(chain[1])
    t.ok(authority.checkIssued(f.upstream.issuer.cert) && authority.verify(f.upstream.issuer.cert.publicKey), 'our authority is the upstream\'s certificate')
    t.same(manifest(f.dataDir).x509.map(entry => entry.id), [authority.serialNumber.toLowerCase()], 'the authority\'s id is its serial number, lowercased')
  })
}

void t.test('remote upstream – the upstream\'s serial number names the authority; one longer than 20 octets is refused', async t => {
  const f = fleet(t)
  const serial = '7f' + 'ab'.repeat(19)
  f.upstream.serial = Buffer.from(serial, 'hex')
  await f.open()
  t.same(manifest(f.dataDir).x509, [{ id: serial, state: 'active' }], '20 octets: accepted, lowercased')
  t.ok(existsSync(join(caDir(f.dataDir), `x509-${serial}.cert.pem`)), 'and its files are named by it')
  const g = fleet(t)
  g.upstream.serial = Buffer.from(serial + 'cd', 'hex')
  await t.rejects(g.open(), {
    code: 'ERR_CA_UPSTREAM_INVALID', message: `stand-in SPIRE server certified our authority with serial number ${serial}cd, longer than RFC 5280's 20 octets`
  })
  t.notOk(existsSync(manifestPath(g.dataDir)), 'nothing saved')
})

void t.test('remote upstream – each JWT key is published before it is saved or served; the bundle holds ours and the other devices\'', async t => {
  const f = fleet(t)
  const other = f.upstream.addDeviceKey('other-device-key')
  const opened: { ca?: AgentCa } = {}
  const seen: Array<{ keyId: string, stateFile: boolean, saved: boolean, held: boolean, served: boolean }> = []
  f.upstream.onCall = call => {
    if (call.method !== 'publishJwtKey') return
    const stateFile = existsSync(manifestPath(f.dataDir))
    seen.push({
      keyId: call.keyId,
      stateFile,
      saved: stateFile && manifest(f.dataDir).jwt.some(key => key.kid === call.keyId),
      held: opened.ca?.status().jwt.some(key => key.kid === call.keyId) ?? false,
      served: opened.ca?.bundle().jwt.findKey(call.keyId) !== undefined
    })
  }
  const ca = opened.ca = await f.open()
  f.clock.advance(CA_TTL / 2)
  t.equal(await ca.rotate(), true, 'the successor JWT key is prepared at half-life')
  const kids = ca.status().jwt.map(key => key.kid)
  t.same(seen.map(call => call.keyId), kids, 'each of our keys was published, once, in order')
  t.same(seen.map(({ saved, held, served }) => [saved, held, served]), [[false, false, false], [false, false, false]],
    'when published, a key was neither saved, nor held, nor served')
  t.equal(seen[0].stateFile, false, 'a new CA has no state.json at all when its first key is published')
  t.same([...ca.bundle().jwt.keys.keys()].sort(), [...kids, other].sort(), 'the bundle: our keys and the other device\'s')
})

void t.test('remote upstream – a device validates another device\'s JWT-SVIDs once its upstream bundle holds that device\'s key', async t => {
  const f = fleet(t)
  const device1 = await f.open({ dataDir: tempDir(t) })
  const device2 = await f.open()
  const { token } = await device2.mintJwtSvid({ spiffeId: workload, audience: ['peer'] })
  await t.rejects(validateJwtSvid(token, device1.bundle(), 'peer', { now: f.clock.now }), { code: 'ERR_JWT_SVID_KEY_NOT_FOUND' }, 'device 1 does not know device 2\'s key yet')
  t.equal(await device1.updateUpstreamBundle(f.upstream.bundle()), true, 'the bundle poll brings it')
  t.equal((await validateJwtSvid(token, device1.bundle(), 'peer', { now: f.clock.now })).id.toString(), workload.toString(), 'now it validates')
})

void t.test('remote upstream – under a key ID clash, our own JWT key wins, also after a restart', async t => {
  const f = fleet(t)
  const ca = await f.open()
  const [own] = ca.status().jwt
  const ownJwk = ca.bundle().jwt.findKey(own.kid)
  const forged = f.upstream.bundle()
  forged.jwt.addKey(own.kid, generateKeyPair().publicKey.export({ format: 'jwk' }))
  forged.jwt.addKey('other-device-key', generateKeyPair().publicKey.export({ format: 'jwk' }))
  t.equal(await ca.updateUpstreamBundle(forged), true, 'taken: it holds another device\'s key')
  t.same(ca.bundle().jwt.findKey(own.kid), ownJwk, 'our key is served under our key ID')
  ca.close()
  const reopened = await f.open()
  t.same(reopened.bundle().jwt.findKey(own.kid), ownJwk, 'and still after a restart')
  await checkIssues(t, f, reopened, 'after the clash')
})

void t.test('remote upstream – a JWT key the upstream does not take is never used: a new CA does not open; a rotation fails and is retried', async t => {
  const f = fleet(t)
  f.upstream.publishFailure = new UpstreamError('ERR_UPSTREAM_FAILED', 'PublishJWTAuthority failed: Internal')
  await t.rejects(f.open(), { code: 'ERR_UPSTREAM_FAILED', message: 'PublishJWTAuthority failed: Internal' })
  t.same(readdirSync(caDir(f.dataDir)), [], 'nothing saved: no state.json, no key')
  f.upstream.publishFailure = undefined
  const { logger, records } = capturedLogger()
  const ca = await f.open({ logger })
  t.ok(records.some(record => record.msg === 'CA: creating a new CA' && record.created === true), 'the next open starts a new CA')
  const before = manifest(f.dataDir)
  f.clock.advance(CA_TTL / 2)
  f.upstream.publishFailure = new UpstreamError('ERR_UPSTREAM_FAILED', 'PublishJWTAuthority failed: Internal')
  await t.rejects(ca.rotate(), { code: 'ERR_UPSTREAM_FAILED' }, 'the rotation fails')
  t.same(manifest(f.dataDir), before, 'nothing saved: not the new JWT key, nor the authority certified with it')
  t.equal(ca.status().jwt.length, 1, 'nor held')
  await checkIssues(t, f, ca, 'while publishing fails')
  // Those mints started a rotation in the background; this one runs after it, so it too has met the failure.
  await t.rejects(ca.rotate(), { code: 'ERR_UPSTREAM_FAILED' }, 'still failing')
  f.upstream.publishFailure = undefined
  t.equal(await ca.rotate(), true, 'the next check (the 10 s timer) retries it')
  t.same(ca.status().jwt.map(key => key.state), ['active', 'prepared'])
  t.same(ca.status().x509.map(key => key.state), ['active', 'prepared'])
})

for (const close of [true, false]) {
  void t.test(`remote upstream – the upstream bundle comes back from disk after a restart (${close ? 'closed' : 'killed, never closed'})`, async t => {
    const f = fleet(t)
    const first = await f.open()
    const other = f.upstream.addDeviceKey('other-device-key')
    f.upstream.addRoot()
    t.equal(await first.updateUpstreamBundle(f.upstream.bundle()), true)
    const served = first.bundle().toJSON()
    if (close) first.close()
    const calls = f.upstream.calls.length
    f.upstream.failure = unreachable()
    const second = await f.open()
    t.same(second.bundle().toJSON(), served, 'the same bundle: roots, our and other devices\' JWT keys, sequence')
    t.same(second.bundle().x509.authorities.map(cert => cert.raw), f.upstream.roots, 'both upstream roots')
    t.ok(second.bundle().jwt.findKey(other), 'the other device\'s key')
    t.equal(f.upstream.calls.length, calls, 'nothing asked of the upstream')
    const named = manifest(f.dataDir).upstreamBundle ?? ''
    t.match(named, /^upstream-bundle-[0-9a-f]{16}\.json$/, 'state.json names the upstream bundle file')
    t.same(bundleFiles(f.dataDir), [named], 'the only one in the directory')
    const onDisk = SpiffeBundle.parse(td, readFileSync(join(caDir(f.dataDir), named), 'utf8'))
    t.same(onDisk.x509.authorities.map(cert => cert.raw), f.upstream.roots)
    t.ok(onDisk.jwt.findKey(other))
    await checkIssues(t, f, second, 'reopened offline')
  })
}

void t.test('remote upstream – a changed upstream bundle gets a new file; the superseded one is removed, also after a restart', async t => {
  const f = fleet(t)
  let ca = await f.open()
  const files: string[] = [manifest(f.dataDir).upstreamBundle ?? '']
  for (const step of ['running', 'after a restart']) {
    f.upstream.addDeviceKey(`device-key-${files.length}`)
    t.equal(await ca.updateUpstreamBundle(f.upstream.bundle()), true)
    const named = manifest(f.dataDir).upstreamBundle ?? ''
    t.not(named, files.at(-1), `${step}: a new file`)
    t.same(bundleFiles(f.dataDir), [named], `${step}: the superseded file is gone`)
    files.push(named)
    ca.close()
    ca = await f.open()
  }
})

void t.test('remote upstream – with the upstream away, a CA with a valid authority opens and issues until the authority expires', async t => {
  const f = fleet(t)
  ;(await f.open()).close()
  const [expiry] = f.upstream.granted
  f.upstream.failure = unreachable()
  f.clock.advance(CA_TTL * 2 / 3)
  const { logger, records } = capturedLogger()
  const ca = await f.open({ logger })
  t.ok(records.some(record => record.level === 50 && (record.err as { code?: string }).code === 'ERR_UPSTREAM_UNREACHABLE' &&
    record.msg === 'CA: cannot rotate with stand-in SPIRE server; issuing with the current authority until it can'), 'opened past half-life; the failed rotation is logged')
  await checkIssues(t, f, ca, 'offline, rotation due')
  f.clock.now = new Date(expiry.getTime() - 60_000)
  await checkIssues(t, f, ca, 'offline, a minute before the authority expires')
  t.equal(ca.status().x509.length, 1, 'no successor: none could be certified')
  t.same(ca.status().issuesUntil, expiry)
  f.clock.now = new Date(expiry.getTime() + 1000)
  await t.rejects(ca.mintX509Svid({ spiffeId: workload }), { code: 'ERR_UPSTREAM_UNREACHABLE' }, 'once it has expired, minting fails with the upstream\'s error')
  await t.rejects(f.open(), { code: 'ERR_UPSTREAM_UNREACHABLE' }, 'and it no longer opens')
  f.upstream.failure = undefined
  t.equal(await ca.rotate(), true, 'the upstream back: a new authority at once')
  await checkIssues(t, f, ca, 'back online')
})

void t.test('remote upstream – a slow upstream never holds up minting while the active authority is valid', { timeout: 10_000 }, async t => {
  const f = fleet(t)
  const ca = await f.open()
  let answer: () => void = () => {}
  f.upstream.gate = new Promise(resolve => { answer = resolve })
  const asked = new Promise(resolve => { f.upstream.onCall = resolve })
  f.clock.advance(CA_TTL * 2 / 3)
  // Were a mint to wait for the rotation, it would wait for ever here (and the test time out).
  await checkIssues(t, f, ca, 'rotation due, the upstream not answering')
  t.match(await asked, { method: 'signAuthority' }, 'the rotation was started, in the background')
  t.equal(ca.status().x509.length, 1, 'and is still waiting for the upstream')
  answer()
  await ca.rotate()
  t.same(ca.status().x509.map(authority => authority.state), ['active', 'prepared'], 'once it answers, the successor is prepared')
})

void t.test('remote upstream – a new CA cannot open without its upstream; the upstream\'s error says why', async t => {
  const f = fleet(t)
  f.upstream.failure = unreachable()
  await t.rejects(f.open(), { code: 'ERR_UPSTREAM_UNREACHABLE', message: f.upstream.failure.message })
  t.notOk(existsSync(manifestPath(f.dataDir)), 'no state.json')
})

void t.test('remote upstream – updateUpstreamBundle: stored, sequenced and announced only when what is served changes', async t => {
  const f = fleet(t)
  const ca = await f.open()
  const announced: SpiffeBundle[] = []
  ca.onBundleChange(bundle => announced.push(bundle))
  const sequence = ca.bundle().sequence ?? 0
  const state = readFileSync(manifestPath(f.dataDir), 'utf8')
  t.equal(await ca.updateUpstreamBundle(f.upstream.bundle()), false, 'the same content: no change')
  t.equal(ca.bundle().sequence, sequence)
  t.equal(readFileSync(manifestPath(f.dataDir), 'utf8'), state, 'nothing written')
  const other = f.upstream.addDeviceKey('other-device-key')
  t.equal(await ca.updateUpstreamBundle(f.upstream.bundle()), true, 'another device\'s JWT key: a change')
  t.equal(ca.bundle().sequence, sequence + 1)
  t.equal(announced.length, 1, 'announced once')
  t.ok(announced[0].jwt.findKey(other), 'with the new key')
  const root = f.upstream.addRoot()
  t.equal(await ca.updateUpstreamBundle(f.upstream.bundle()), true, 'a new root: a change')
  t.equal(ca.bundle().sequence, sequence + 2)
  t.equal(announced.length, 2)
  t.ok(announced[1].x509.authorities.some(cert => cert.raw.equals(root)), 'with the new root')
  t.equal(manifest(f.dataDir).sequence, sequence + 2, 'persisted')
  t.equal(await ca.updateUpstreamBundle(f.upstream.bundle()), false, 'and the same again: no change')
  t.equal(announced.length, 2)
  await t.rejects((await openCa(t)).updateUpstreamBundle(f.upstream.bundle()), { code: 'ERR_CA_OPTIONS_INVALID', message: /only under a remote upstream/ },
    'a CA without a remote upstream takes no upstream bundle')
})

void t.test('remote upstream – rotation follows the lifetime the upstream granted: prepared at half of it, active at five sixths', async t => {
  const f = fleet(t)
  f.upstream.maxTtlSeconds = CA_TTL * 2 / 3
  const ca = await f.open()
  let activations = 0
  ca.onActivate(() => activations++)
  const status = ca.status()
  t.equal(status.upstream, true)
  t.equal(status.upstreamName, 'stand-in SPIRE server')
  const [first] = status.x509
  t.same(first.notAfter, new Date(f.clock.now.getTime() + CA_TTL * 2 / 3 * 1000), 'capped at 40 min, not the hour asked')
  t.same(status.issuesUntil, first.notAfter, 'issues until the active authority\'s NotAfter')
  const granted = { id: '', state: 'active' as const, notBefore: first.notBefore, notAfter: first.notAfter }
  const rotateAt = async (ms: number): Promise<void> => {
    f.clock.now = new Date(ms)
    await ca.rotate()
  }
  await rotateAt(preparationTime(granted).getTime() - 1000)
  t.equal(f.upstream.count('signAuthority'), 1, 'nothing asked before half of the granted life')
  await rotateAt(preparationTime(granted).getTime())
  t.equal(f.upstream.count('signAuthority'), 2, 'a successor certified at half of it')
  const prepared = ca.status()
  t.same(prepared.x509.map(authority => authority.state), ['active', 'prepared'])
  t.same(prepared.x509[1].notAfter, f.upstream.granted[1])
  t.same(prepared.issuesUntil, f.upstream.granted[1], 'issues until the prepared authority\'s NotAfter')
  t.same(prepared.x509[1].activatesAt, activationTime(granted))
  t.same(f.upstream.calls.flatMap(call => call.method === 'signAuthority' ? [call.ttlSeconds] : []), [CA_TTL, CA_TTL], 'each time asked for the CA TTL')
  const before = await checkIssues(t, f, ca, 'prepared')
  t.equal(new X509Certificate(before[1]).fingerprint256, first.fingerprint256, 'until activation, SVIDs come from the first authority')
  await rotateAt(activationTime(granted).getTime() - 1)
  t.equal(activations, 0, 'not active before five sixths')
  await rotateAt(activationTime(granted).getTime())
  t.equal(activations, 1, 'active at five sixths')
  const after = await checkIssues(t, f, ca, 'activated')
  t.equal(new X509Certificate(after[1]).fingerprint256, prepared.x509[1].fingerprint256, 'new SVIDs come from the successor')
  t.equal(verifyX509Svid(before, ca.bundle(), { now: f.clock.now }).toString(), workload.toString(), 'SVIDs of the old authority still verify')
})

void t.test('remote upstream – a CA state does not silently change its kind of upstream', async t => {
  const f = fleet(t)
  ;(await f.open()).close()
  const files = { certFile: join(tempDir(t), 'root.pem'), keyFile: join(tempDir(t), 'root.key') }
  writeFileSync(files.certFile, f.upstream.root.certPem)
  writeFileSync(files.keyFile, f.upstream.root.key.export({ type: 'pkcs8', format: 'pem' }))
  const selfSigned = tempDir(t)
  ;(await f.open({ dataDir: selfSigned, remoteUpstream: undefined })).close()
  const fromFiles = tempDir(t)
  ;(await f.open({ dataDir: fromFiles, remoteUpstream: undefined, upstream: files })).close()
  const remote = 'a device CA of a SPIRE server \\(upstream\\)'
  const self = 'a self-signed root'
  const caFiles = 'an intermediate of an upstream CA from files \\(ca\\.upstream\\)'
  const cases: Array<[string, Partial<AgentCaOptions>, string, string]> = [
    [f.dataDir, { remoteUpstream: undefined }, remote, self],
    [f.dataDir, { remoteUpstream: undefined, upstream: files }, remote, caFiles],
    [selfSigned, {}, self, remote],
    [fromFiles, {}, caFiles, remote]
  ]
  for (const [dataDir, options, made, configured] of cases) {
    await t.rejects(f.open({ dataDir, ...options }), {
      code: 'ERR_CA_STATE_MISMATCH', message: new RegExp(`it was made as ${made}, but is now configured as ${configured}\\. `)
    }, `made as ${made}, opened as ${configured}`)
  }
  await t.rejects(f.open({ dataDir: tempDir(t), upstream: files }), {
    code: 'ERR_CA_OPTIONS_INVALID', message: /upstream \(CA files\) and remoteUpstream \(a SPIRE server\) exclude each other/
  }, 'CA files and a remote upstream together are refused')
})
