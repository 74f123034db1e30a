/**
 * What both fleet namespace tests prove, whatever the upstream (fleet-netns-stand.ts): app-to-app calls between
 * devices through their transparent sidecars (allowed, and denied by the policy), SVIDs that `openssl verify` against
 * the upstream's bundle, a JWT-SVID across devices, calls going on while the upstream is away for longer than an SVID
 * lives, and device CA rotations under continuous load with every failed request counted. Not a test itself.
 */
import type { Test } from 'tap'
import { X509Certificate } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { decodePem } from '../../spiffe/pem'
import { runCli } from '../helpers/cli'
import { must, waitFor } from '../helpers/command'
import { APP_UID, AUDIENCE, NODE_APP, sleep } from './fleet-netns-stand'
import type { BirthCert } from '../../certs-test'
import type { Device, DeviceOptions, FleetNetnsStand, FleetUpstream } from './fleet-netns-stand'

const MARKER = 'chaperone-fleet-plaintext-marker-5c1d'
const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
const count = (device: Device, event: string): number => device.sidecar?.logs().filter(l => l.event === event).length ?? 0

/**
 * An app on `from` calls the app on `to` by address: GET allowed (XFCC names the caller; a capture on the bridge sees no
 * plaintext), POST denied and logged.
 */
export async function appToApp (t: Test, stand: FleetNetnsStand, from: Device, to: Device): Promise<void> {
  const url = `http://${stand.address(to.host)}:8080/status`
  const capture = await stand.topology.capture('tcp port 8080')
  const get = await stand.curl(from.host, `${url}?marker=${MARKER}`)
  const pcap = await capture.stop()
  t.equal(get.code, '200', `GET through both sidecars: ${get.stderr}`)
  t.ok(pcap.length > 1000, 'the capture on the bridge saw the call')
  t.notOk(pcap.includes(Buffer.from(MARKER)), 'and no plaintext of it: the wire between the devices carries mTLS only')
  t.match(get.body, new RegExp(`^caller=By=${escape(to.appId)};Hash=[0-9a-f]{64};URI=${escape(from.appId)}$`), `the app on ${to.host} sees ${from.host}'s app's SPIFFE ID in XFCC`)
  const post = await stand.curl(from.host, url, 'POST')
  t.equal(post.code, '403', 'a POST the policy does not allow is refused')
  await waitFor('the denial to be logged', 5000, async () => from.sidecar?.logs().find(l => l.event === 'denied') === undefined ? undefined : true)
  t.match(from.sidecar?.logs().find(l => l.event === 'denied'), { direction: 'outbound', peer: to.appId, self: from.appId, method: 'POST' }, `${from.host}'s sidecar logs the denial`)
}

/** The X509-SVID each device gives its app (spire-agent api fetch x509), `openssl verify`d against the upstream's bundle. */
export async function svidsVerify (t: Test, stand: FleetNetnsStand, upstream: FleetUpstream, devices: readonly Device[]): Promise<void> {
  const bundle = join(stand.dir, 'upstream-bundle.pem')
  writeFileSync(bundle, await upstream.bundlePem())
  for (const device of devices) {
    const out = mkdtempSync(join(stand.dir, 'fetch-'))
    try {
      const fetched = await stand.api(device.socket, ['fetch', 'x509', '-write', out])
      t.equal(fetched.status, 0, `spire-agent api fetch x509 on ${device.host}: ${fetched.stderr}`)
      t.ok(readdirSync(out).includes('svid.0.pem'), 'an SVID was written')
      // svid.0.pem holds leaf and device CA: the leaf is verified with the device CA as untrusted intermediate.
      const verified = await must('openssl', ['verify', '-CAfile', bundle, '-untrusted', join(out, 'svid.0.pem'), join(out, 'svid.0.pem')])
      t.match(verified, /: OK/, `openssl verifies ${device.host}'s app SVID against ${upstream.name}'s bundle`)
      const text = await must('openssl', ['x509', '-noout', '-ext', 'subjectAltName', '-in', join(out, 'svid.0.pem')])
      t.match(text, `URI:${device.appId}`, `and it names ${device.appId}`)
    } finally {
      rmSync(out, { recursive: true, force: true })
    }
  }
}

/** A JWT-SVID fetched on `one` validates on `two` (once two holds one's JWT key: bundle poll), for its audience only. */
export async function jwtAcross (t: Test, stand: FleetNetnsStand, one: Device, two: Device): Promise<void> {
  const fetched = await stand.api(one.socket, ['fetch', 'jwt', '-audience', AUDIENCE])
  const token = /^token\(([^)]+)\):\n\s*(\S+)/m.exec(fetched.stdout)?.[2]
  t.ok(token, `a JWT-SVID from ${one.host}: ${fetched.stderr}`)
  const validate = async (audience: string): Promise<{ status: number | null, stdout: string }> =>
    await stand.api(two.socket, ['validate', 'jwt', '-audience', audience, '-svid', token ?? ''])
  const onTwo = await waitFor(`${two.host} to hold ${one.host}'s JWT key`, 60_000, async () => {
    const result = await validate(AUDIENCE)
    return result.status === 0 ? result : undefined
  })
  t.match(onTwo.stdout, `SPIFFE ID : ${one.appId}`, `${two.host} validates it`)
  t.not((await validate('another-audience')).status, 0, 'for its audience only')
}

/**
 * The upstream stopped for `downMs` (longer than an X509-SVID lives): new connections from `one`'s app to `two`'s keep
 * being answered, both sidecars rotate SVIDs their devices issue offline; restarted, both devices log their resync.
 */
export async function upstreamAway (t: Test, stand: FleetNetnsStand, upstream: FleetUpstream, one: Device, two: Device, downMs: number): Promise<void> {
  const url = `http://${stand.address(two.host)}:8080/away`
  const rotations = { one: count(one, 'svid_updated'), two: count(two, 'svid_updated') }
  const logsAt = { one: one.agent.logs().length, two: two.agent.logs().length }
  // Stopped once both devices hold their next CA (prepared at half-life), so that a short test CA outlives the outage.
  await waitFor('both devices to prepare their next device CA', 90_000, async () =>
    caRotations(one, logsAt.one, 'prepared') > 0 && caRotations(two, logsAt.two, 'prepared') > 0 ? true : undefined)
  await upstream.stop()
  const stoppedAt = Date.now()
  let ok = 0
  const failed: string[] = []
  while (Date.now() - stoppedAt < downMs) {
    const answer = await stand.curl(one.host, url)
    if (answer.code === '200' && answer.body.includes(`URI=${one.appId}`)) ok++
    else failed.push(`${answer.code} ${answer.stderr.trim()}`)
    await sleep(500)
  }
  t.comment(`${upstream.name} down ${((Date.now() - stoppedAt) / 1000).toFixed(1)} s: ${ok} calls answered (a new connection each), ${failed.length} failed`)
  t.same(failed, [], 'no call failed while the upstream was away')
  t.ok(ok > 10, 'calls went on')
  t.ok(count(one, 'svid_updated') > rotations.one && count(two, 'svid_updated') > rotations.two, 'both sidecars took new SVIDs their devices issued offline')
  for (const device of [one, two]) {
    t.ok(device.agent.logs().slice(device === one ? logsAt.one : logsAt.two).some(l => l.msg === 'upstream: cannot read the bundle; serving the one held, retrying'), `${device.host} noticed the upstream was gone`)
  }
  await upstream.start()
  for (const device of [one, two]) {
    const back = await waitFor(`${device.host} to resync with ${upstream.name}`, 60_000, async () =>
      device.agent.logs().slice(device === one ? logsAt.one : logsAt.two).find(l => l.msg === 'upstream: reachable again; bundle in sync'))
    t.ok(back, `${device.host} resynced (lost ${String(back.lostSeconds)} s)`)
  }
  const after = await stand.curl(one.host, url)
  t.equal(after.code, '200', 'and calls go on after the restart')
}

/**
 * The device's X.509 CA rotations logged after its `since`th log line in which an authority was `prepared` (obtained
 * from the upstream: at half-life) or `activated` (the new one signs from now on).
 */
export function caRotations (device: Device, since: number, step: 'prepared' | 'activated'): number {
  return device.agent.logs().slice(since).filter(l => /^CA: X\.509 authority rotation/.test(String(l.msg)) && Array.isArray(l[step]) && (l[step] as unknown[]).length > 0).length
}

/** The serial number of the device CA that issued the SVID `device` gives its app now (spire-agent api fetch x509). */
async function deviceCaSerial (stand: FleetNetnsStand, device: Device): Promise<string> {
  const out = mkdtempSync(join(stand.dir, 'fetch-'))
  try {
    const fetched = await stand.api(device.socket, ['fetch', 'x509', '-write', out])
    if (fetched.status !== 0) throw new Error(`spire-agent api fetch x509 on ${device.host}: ${fetched.stderr}`)
    const [, ca] = decodePem(readFileSync(join(out, 'svid.0.pem'), 'utf8'))
    if (ca === undefined) throw new Error(`${device.host} gave no device CA with its SVID`)
    return new X509Certificate(ca.der).serialNumber
  } finally {
    rmSync(out, { recursive: true, force: true })
  }
}

/** Sequential GETs from several loops (two new-connection, two keep-alive) until a stop file appears: a JSON summary. */
const LOAD = `const http = require("http"); const fs = require("fs"); const [url, stop, caller] = process.argv.slice(1);
let ok = 0, failed = 0; const errors = [];
function loop (agent) { return new Promise(done => { (function next () {
  if (fs.existsSync(stop)) return done();
  const req = http.get(url, { agent, timeout: 10000 }, r => { let b = ""; r.on("data", d => { b += d });
    r.on("end", () => { if (r.statusCode === 200 && b.includes("URI=" + caller)) ok++; else { failed++; errors.push(new Date().toISOString() + " " + r.statusCode + " " + b.slice(0, 100)) } setTimeout(next, 20) }) });
  req.on("timeout", () => req.destroy(new Error("timeout")));
  req.on("error", e => { failed++; errors.push(new Date().toISOString() + " " + e.message); setTimeout(next, 20) }) })() }) }
const keep = () => new http.Agent({ keepAlive: true, maxSockets: 1 });
Promise.all([loop(false), loop(false), loop(keep()), loop(keep())]).then(() => { console.log(JSON.stringify({ ok, failed, errors: errors.slice(0, 20) })); process.exit(0) })`

/** Continuous HTTP load from `one`'s app to `two`'s while both device CAs rotate at half-life (at least once each): 0 failures. */
export async function rotationUnderLoad (t: Test, stand: FleetNetnsStand, upstream: FleetUpstream, one: Device, two: Device, maxMs: number): Promise<void> {
  const rotated = (device: Device, since: number): number => caRotations(device, since, 'activated')
  const since = { one: one.agent.logs().length, two: two.agent.logs().length }
  const caBefore = await deviceCaSerial(stand, one)
  const stop = join(stand.dir, 'load-stop')
  rmSync(stop, { force: true })
  const startedAt = Date.now()
  const load = stand.topology.exec(one.host, NODE_APP[0], [...NODE_APP.slice(1), '-e', LOAD, `http://${stand.address(two.host)}:8080/load`, stop, one.appId],
    { uid: APP_UID, timeoutMs: maxMs + 60_000 })
  await waitFor('both devices to activate a new device CA under load', maxMs, async () =>
    rotated(one, since.one) > 0 && rotated(two, since.two) > 0 ? true : undefined)
  // Load goes on until the app's SVID comes from the new device CA, and a little longer.
  const caAfter = await waitFor(`${one.host}'s app to get an SVID from its new device CA`, 30_000, async () => {
    const serial = await deviceCaSerial(stand, one)
    return serial === caBefore ? undefined : serial
  })
  await sleep(3000)
  writeFileSync(stop, '')
  const result = await load
  const summary = JSON.parse(result.stdout.trim() || '{}') as { ok?: number, failed?: number, errors?: string[] }
  const seconds = (Date.now() - startedAt) / 1000
  t.comment(`under ${upstream.name}: ${summary.ok ?? 0} requests answered in ${seconds.toFixed(1)} s (${Math.round((summary.ok ?? 0) / seconds)}/s), ${summary.failed ?? 'no count:'} failed ${result.stderr}; device CA rotations: ${one.host} ${rotated(one, since.one)}, ${two.host} ${rotated(two, since.two)}`)
  t.equal(summary.failed, 0, `no failed request: ${(summary.errors ?? []).join('; ')}`)
  t.not(caAfter, caBefore, `${one.host}'s app's SVID chains to its new device CA (${caAfter}, was ${caBefore}), under load`)
  t.ok((summary.ok ?? 0) > 100, 'a steady stream of requests went through')
}

/** `chaperone ca show` on each device: an intermediate under `upstreamName`, and until when it can issue without it. */
export async function deviceCaShown (t: Test, devices: readonly Device[], upstreamName: string): Promise<void> {
  for (const device of devices) {
    const shown = await runCli(['ca', 'show', '--admin-socket', device.adminSocket])
    t.equal(shown.status, 0, shown.stderr)
    t.match(shown.stdout, /^Trust domain {4}: fleet\.example \(intermediate under an upstream CA\)\n/, `${device.host}'s CA is an intermediate`)
    t.match(shown.stdout, `Upstream        : ${upstreamName}\n`, `signed by ${upstreamName}`)
    t.match(shown.stdout, /Issues until {4}: \S+ \(in /, 'and it says until when it can issue')
  }
}

/** What a device's refusals need from its upstream: its log checks and how an operator bans and evicts there. */
export interface RefusingUpstream {
  /** Waits until the upstream has logged refusing a birth certificate from `address`: the line, as it reads. */
  readonly foreignLogged: (address: string) => Promise<string>
  readonly bannedLogged: () => boolean
  readonly ban: (agentId: string) => Promise<void>
  readonly evict: (agentId: string) => Promise<void>
}

const lastLine = (text: string | undefined): string => text?.split('\n').filter(l => l !== '').at(-1) ?? ''

/**
 * In `host`: a device with `foreign` (another manufacturer's birth certificate) does not start and says why; a
 * registered device with `birth` attests, is banned, cannot attest afresh and says why, is evicted and attests again.
 */
export async function refusedDevices (t: Test, stand: FleetNetnsStand, host: string, births: { foreign: BirthCert, birth: BirthCert }, options: DeviceOptions, upstream: RefusingUpstream): Promise<void> {
  const foreign = await stand.device(host, births.foreign, options)
  const foreignError = await stand.startAgent(foreign)
  t.ok(foreignError, 'the device with another manufacturer\'s birth certificate does not start')
  t.match(foreignError, /x509pop|certificate|attest/i, `and says why: ${lastLine(foreignError)}`)
  t.ok(await upstream.foreignLogged(stand.address(host)), 'the upstream logs the refusal, with the reason')

  const banned = await stand.device(host, births.birth, options)
  t.equal(await stand.startAgent(banned), undefined, 'a registered device attests')
  await banned.agent.stop()
  await upstream.ban(banned.agentId)
  rmSync(join(banned.dir, 'data'), { recursive: true, force: true })
  banned.agent.stderr = ''
  const bannedError = await stand.startAgent(banned)
  t.ok(bannedError, 'banned, it cannot attest again')
  t.match(bannedError, /banned/i, `and says why: ${lastLine(bannedError)}`)
  t.ok(upstream.bannedLogged(), 'the upstream logs the banned device')
  await upstream.evict(banned.agentId)
  banned.agent.stderr = ''
  t.equal(await stand.startAgent(banned), undefined, 'evicted, the device may attest again')
}

/** The subtests both upstreams share: app to app through the sidecars, SVIDs verified against `bundleName`, a JWT across. */
export async function betweenDevices (t: Test, stand: FleetNetnsStand, upstream: FleetUpstream, one: Device, two: Device, bundleName: string): Promise<void> {
  await t.test(`${one.host}'s app calls ${two.host}'s through both transparent sidecars; a denied call is refused and logged`, async t => {
    await appToApp(t, stand, one, two)
  })
  await t.test(`the devices' SVIDs openssl-verify against ${bundleName}`, async t => {
    await svidsVerify(t, stand, upstream, [one, two])
  })
  await t.test(`a JWT-SVID fetched on ${one.host} validates on ${two.host}`, async t => {
    await jwtAcross(t, stand, one, two)
  })
}

/**
 * A Chaperone sidecar in `host` fed by a SPIRE agent's Workload API (`workloadApi`, `unix://…`) as `workloadId`
 * calls `to`'s app: the app sees the workload's SPIFFE ID, and the policy (GET only) holds for it too.
 */
export async function spireWorkloadCalls (t: Test, stand: FleetNetnsStand, host: string, workloadApi: string, workloadId: string, to: Device): Promise<void> {
  const sidecar = stand.process(host, ['proxy', 'run', '--workload-api', workloadApi, '--policy', stand.policy, '--spiffe-id', workloadId,
    '--outbound-http', `127.0.0.1:18080=${stand.address(to.host)}:8080@${to.appId}`, '--log-level', 'info'], `${host} sidecar`)
  await sidecar.startUntil('admin')
  const get = await stand.curl(host, `http://127.0.0.1:18080/from-${host}`)
  t.equal(get.code, '200', get.stderr)
  t.match(get.body, `;URI=${workloadId}`, `${to.host}'s app sees the SPIRE workload's SPIFFE ID`)
  const post = await stand.curl(host, `http://127.0.0.1:18080/from-${host}`, 'POST')
  t.equal(post.code, '403', 'and the policy holds for it too')
}

/** The subtests both upstreams share after the calls: device CAs rotating under load, then the upstream away for 25 s. */
export async function rotationAndOutage (t: Test, stand: FleetNetnsStand, upstream: FleetUpstream, one: Device, two: Device, caTtl: string): Promise<void> {
  await t.test(`device CAs of ${caTtl} rotate at half-life under continuous load: 0 failed requests`, async t => {
    await rotationUnderLoad(t, stand, upstream, one, two, 90_000)
  })
  await t.test(`the ${upstream.name} stopped for 25 s (> the 20 s SVID lifetime): calls go on; restarted: the devices resync`, async t => {
    await upstreamAway(t, stand, upstream, one, two, 25_000)
  })
}
