/**
 * `npm run test:deploy`: the repository's docker-compose.yml, unmodified, on a real Docker engine. Not part of
 * `npm test` (it installs Debian packages, may start dockerd and builds images: minutes, not seconds); .ci/run runs
 * it after the unit tests.
 *
 * It installs what is missing, starts dockerd when none runs (engine.ts), builds the images on this machine with no
 * registry (images.ts: the two sample images are stand-ins under their names) and creates the external network
 * proxy-redirect. Then, with each Compose (composes.ts: Debian's docker-compose 1.29 and Compose v2), it starts
 * capturing on the network's bridge, and only then runs `up`, and proves: app-a's calls reach
 * app-b with app-a's ID in X-Forwarded-Client-Cert; a call the policy denies is refused and logged, and a container
 * with no sidecar gets nothing from app-b; a policy edit applies live; identities (CA and entries) survive `down` +
 * `up`; every byte captured between the apps, from before each `up`, is TLS; and the host's firewall is as
 * it was. Everything it created is removed at the end, also when a check fails.
 */
import t, { type Test } from 'tap'
import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { findTool } from '../../helpers/netns-tools'
import { captureBridge, type BridgeCapture } from './capture'
import { must, run, waitFor, type CommandResult } from '../../helpers/command'
import { installMissing, startEngine } from './engine'
import { composes, type Compose } from './composes'
import { buildImages, CURL_IMAGE } from './images'
import { notTls, tcpStreams } from './pcap'

const ROOT = join(__dirname, '..', '..', '..')
const PROJECT = 'chaperonedeploytest'
/** The container with no sidecar on proxy-redirect (see its start). */
const ANCHOR = `${PROJECT}-no-sidecar`
const NETWORK = 'proxy-redirect'
const ADMIN = ['--admin-socket', '/run/chaperone-admin/admin.sock']
const APP_A = 'spiffe://plant.example/app-a'
const APP_B = 'spiffe://plant.example/app-b'
const HELLO = 'hello from app-b'
const ROGUE_PATH = '/rogue-plaintext-probe'
const skip = process.getuid?.() !== 0
  ? 'not root: the deployment test installs packages, may start dockerd and captures on a bridge (CI runs it as root)'
  : false

const seconds = (since: number): string => `${((Date.now() - since) / 1000).toFixed(1)} s`

/** iptables-save of the host without its comment lines (they carry a date), or '' without iptables. */
async function firewall (): Promise<string> {
  const save = findTool('iptables-save')
  if (save === undefined) return ''
  return (await must(save, [])).split('\n').filter(line => !line.startsWith('#')).join('\n')
}

interface Deployment {
  /** The temporary folder with the copied docker-compose.yml and deploy/. */
  dir: string
  compose: (...args: string[]) => Promise<CommandResult>
  composeMust: (...args: string[]) => Promise<string>
}

/** The lines a service logged, without Compose's `name | ` prefix. */
async function logs (d: Deployment, service: string): Promise<string[]> {
  return (await d.composeMust('logs', '--no-color', service)).split('\n').map(line => line.replace(/^[^|]*\| ?/, ''))
}

/** The requests app-b (the http-echo stand-in) logged, newest last. */
interface LoggedRequest { method: string, path: string, headers: Record<string, string[] | undefined> }
async function requestsAtAppB (d: Deployment): Promise<LoggedRequest[]> {
  return (await logs(d, 'app-b')).filter(line => line.startsWith('{"event":"request"')).map(line => JSON.parse(line) as LoggedRequest)
}

/** curl in app-a's container (and so through sidecar-a): the HTTP status, or curl's own failure. */
async function callFromAppA (d: Deployment, ...curlArgs: string[]): Promise<string> {
  const result = await d.compose('exec', '-T', 'app-a', 'curl', '-sS', '-m', '10', '-o', '/dev/null', '-w', '%{http_code}', ...curlArgs, 'http://app-b:8080/')
  return result.status === 0 ? result.stdout.trim() : `curl failed: ${result.stderr.trim()}`
}

async function waitForHello (d: Deployment, after: number): Promise<void> {
  await waitFor(`app-a to log "${HELLO}"`, 180_000, async () =>
    (await logs(d, 'app-a')).filter(line => line.includes(HELLO)).length > after ? true : undefined)
}

/** The agent's CA certificates and entries, as the admin CLI prints them. */
async function identities (d: Deployment): Promise<{ bundle: string, entries: string }> {
  const bundle = await d.composeMust('exec', '-T', 'agent', 'chaperone', 'bundle', 'show', ...ADMIN)
  const entries = JSON.parse(await d.composeMust('exec', '-T', 'agent', 'chaperone', 'entry', 'list', ...ADMIN, '--json')) as Array<{ id: string, spiffe_id: string }>
  return { bundle, entries: entries.map(e => `${e.id} ${e.spiffe_id}`).sort().join('\n') }
}

/** Replaces the deployment's policy file the way an editor does (a new file renamed over it). */
function writePolicy (d: Deployment, text: string): void {
  const path = join(d.dir, 'deploy', 'policy', 'policy.yaml')
  writeFileSync(`${path}.next`, text)
  renameSync(`${path}.next`, path)
}

/** The capture holds app-a's connections to app-b, and every stream in it is TLS records from its first byte. */
async function expectOnlyTls (t: Test, capture: BridgeCapture): Promise<void> {
  const { pcap, log, stoppedEarly } = await capture.stop()
  t.equal(stoppedEarly, undefined, 'tcpdump captured from before `up` until now')
  const streams = tcpStreams(pcap).filter(s => s.bytes.length > 0)
  const toApps = streams.filter(s => s.dstPort === 8080 && !s.bytes.includes(ROGUE_PATH))
  t.ok(toApps.length >= 1, `the capture saw app-a's connections to app-b: ${streams.map(s => `${s.key} (${s.bytes.length} bytes)`).join(', ') || `none (tcpdump: ${log.replace(/\s+/g, ' ')})`}`)
  for (const stream of streams) {
    if (stream.bytes.includes(ROGUE_PATH)) continue // the container with no sidecar sent plain text itself
    const problem = notTls(stream.bytes)
    if (problem !== undefined) t.fail(`${stream.key}: ${problem}`)
  }
  t.pass(`every other stream (${streams.length}) is TLS records from its first byte`)
  t.notOk(pcap.includes(HELLO), `"${HELLO}" never crosses the network in plain text`)
}

/** The deployment's checks with one Compose, from `up` to `down -v`, capturing on `bridge` from before `up`. */
async function deployment (t: Test, compose: Compose, bridge: string, originalPolicy: string, dir: string): Promise<void> {
  const args = (rest: string[]): string[] => [...compose.command.slice(1), '-p', PROJECT, '-f', join(dir, 'docker-compose.yml'), ...rest]
  const d: Deployment = {
    dir,
    compose: async (...rest) => await run(compose.command[0], args(rest), { cwd: dir, timeoutMs: 600_000 }),
    composeMust: async (...rest) => await must(compose.command[0], args(rest), { cwd: dir, timeoutMs: 600_000 })
  }
  // A run stopped half-way leaves its containers; start from none.
  await d.compose('down', '-v', '--remove-orphans')
  writePolicy(d, originalPolicy)
  const captures: BridgeCapture[] = []
  const capture = async (name: string): Promise<BridgeCapture> => {
    const started = await captureBridge(bridge, join(dir, `${name}-${compose.version.replace(/\W+/g, '-')}.pcap`))
    captures.push(started)
    return started
  }
  t.teardown(async () => {
    for (const started of captures) await started.stop()
    // What went wrong is in the services' logs: show them before they go.
    if (!t.passing()) process.stderr.write(`${compose.command.join(' ')} logs:\n${(await d.compose('logs', '--no-color', '--tail', '60')).stdout}\n`)
    await d.compose('down', '-v', '--remove-orphans')
  })

  const first = await capture('first-up')
  let second: BridgeCapture | undefined
  const upAt = Date.now()
  await d.composeMust('up', '-d')
  await waitForHello(d, 0)
  t.comment(`up → app-a's first answer from app-b in ${seconds(upAt)}`)

  await t.test('app-a reaches app-b, and app-b is told app-a\'s verified ID', async t => {
    const seen = await requestsAtAppB(d)
    t.ok(seen.length > 0, 'app-b logged app-a\'s requests')
    const xfcc = seen.map(r => r.headers['X-Forwarded-Client-Cert'])
    t.ok(xfcc.every(values => values?.length === 1), 'every request came with exactly one X-Forwarded-Client-Cert')
    t.match(xfcc[0]?.[0], new RegExp(`^By=${APP_B};Hash=[0-9a-f]{64};URI=${APP_A}$`), 'set by app-b\'s sidecar, naming app-a')
    t.equal(await callFromAppA(d), '200', 'a GET from app-a is answered')
  })

  await t.test('a call the policy denies is refused and logged; a container with no sidecar gets nothing', async t => {
    const before = (await requestsAtAppB(d)).length
    t.equal(await callFromAppA(d, '-X', 'POST', '--data', 'x'), '403', 'POST from app-a: 403 from its sidecar')
    const denied = (await logs(d, 'sidecar-a')).filter(line => line.includes('"event":"denied"'))
    t.ok(denied.some(line => line.includes('POST')), `sidecar-a logged the denial: ${denied.at(-1) ?? 'nothing'}`)
    const rogue = await run('docker', ['exec', ANCHOR, 'curl', '-sS', '-m', '10', `http://app-b:8080${ROGUE_PATH}`], { timeoutMs: 60_000 })
    t.not(rogue.status, 0, `plain HTTP from a container with no sidecar fails: ${rogue.stderr.trim()}`)
    const after = await requestsAtAppB(d)
    t.notOk(after.slice(before).some(r => r.method === 'POST' || r.path === ROGUE_PATH), 'app-b received neither request')
  })

  await t.test('a policy edit applies to the next request', async t => {
    writePolicy(d, originalPolicy.replace('methods: [GET, HEAD]', 'methods: [HEAD]'))
    t.equal(await waitFor('the edited policy to deny GET', 30_000, async () => await callFromAppA(d) === '403' ? '403' : undefined), '403', 'GET is denied once the file is saved')
    t.ok((await logs(d, 'sidecar-a')).some(line => line.includes('"event":"policy_reloaded"')), 'sidecar-a logged the reload')
    writePolicy(d, originalPolicy)
    t.equal(await waitFor('the policy to allow GET again', 30_000, async () => await callFromAppA(d) === '200' ? '200' : undefined), '200', 'and allowed again once it is put back')
  })

  await t.test('the first up: proxy-redirect carried nothing but TLS between the apps, from the first packet', async t => {
    await expectOnlyTls(t, first)
  })

  await t.test('identities survive down and up', async t => {
    const before = await identities(d)
    await d.composeMust('down')
    second = await capture('second-up')
    const upAgainAt = Date.now()
    await d.composeMust('up', '-d')
    await waitForHello(d, 0)
    t.comment(`up again → first answer in ${seconds(upAgainAt)}`)
    const after = await identities(d)
    t.equal(after.bundle, before.bundle, 'the same CA')
    t.equal(after.entries, before.entries, 'the same entries')
    const last = (await requestsAtAppB(d)).at(-1)
    t.match(last?.headers['X-Forwarded-Client-Cert']?.[0], `URI=${APP_A}`, 'app-b is told app-a\'s ID again')
  })

  await t.test('the second up: nothing but TLS again, from the first packet', async t => {
    if (second === undefined) t.fail('no capture: the second up did not happen')
    else await expectOnlyTls(t, second)
  })

  await t.test('down -v leaves no container and no volume', async t => {
    await d.composeMust('down', '-v', '--remove-orphans')
    const label = `label=com.docker.compose.project=${PROJECT}`
    t.equal((await must('docker', ['ps', '-aq', '--filter', label])).trim(), '', 'no container of the deployment')
    t.equal((await must('docker', ['volume', 'ls', '-q', '--filter', label])).trim(), '', 'no volume of the deployment')
  })
}

void t.test('deploy – docker compose up on a real engine, with each Compose', { skip, timeout: 3_600_000 }, async t => {
  const started = Date.now()
  const firewallBefore = await firewall()
  const installed = await installMissing()
  t.comment(installed.length > 0 ? `installed ${installed.join(', ')} in ${seconds(started)}` : 'every package was already installed')
  const engineAt = Date.now()
  const engine = await startEngine()
  const cleanups: Array<() => Promise<unknown>> = [engine.stop]
  let cleaned = false
  const cleanUp = async (): Promise<void> => {
    if (cleaned) return
    cleaned = true
    for (const step of cleanups.reverse()) await step().catch((error: Error) => { process.stderr.write(`cleanup: ${error.message}\n`) })
  }
  t.teardown(cleanUp)
  t.comment(`engine: ${engine.ours ? 'dockerd started here' : 'the one already running'}, in ${seconds(engineAt)}`)

  const dir = mkdtempSync(join(tmpdir(), 'chaperone-deploy-'))
  cleanups.push(async () => { rmSync(dir, { recursive: true, force: true }) })
  // The files Compose reads, copied unmodified, so the policy edit below touches no file of the repository.
  cpSync(join(ROOT, 'docker-compose.yml'), join(dir, 'docker-compose.yml'))
  cpSync(join(ROOT, 'deploy'), join(dir, 'deploy'), { recursive: true })
  const originalPolicy = readFileSync(join(dir, 'deploy', 'policy', 'policy.yaml'), 'utf8')

  const buildAt = Date.now()
  const images = await buildImages(engine.ours, line => { t.comment(line) })
  cleanups.push(images.restore)
  t.comment(`images built in ${seconds(buildAt)}`)
  const toolsAt = Date.now()
  const found = await composes(line => { t.comment(line) })
  t.comment(`Compose: ${found.map(c => `${c.command.join(' ')} (${c.version})`).join(', ')}, in ${seconds(toolsAt)}`)

  if ((await run('docker', ['network', 'inspect', NETWORK])).status !== 0) {
    await must('docker', ['network', 'create', NETWORK])
    cleanups.push(async () => await run('docker', ['network', 'rm', NETWORK]))
  }
  const bridge = `br-${(await must('docker', ['network', 'inspect', '--format', '{{.Id}}', NETWORK])).trim().slice(0, 12)}`
  // A container that stays on the network for the whole run, so the bridge keeps a port and stays up across each
  // `down`: a bridge left with no port goes down, and a capture on it can end or see nothing of the next `up`.
  // It is also the container with no sidecar that tries plain HTTP to app-b.
  await run('docker', ['rm', '-f', ANCHOR]) // left by a run stopped half-way
  await must('docker', ['run', '-d', '--name', ANCHOR, '--network', NETWORK, '--entrypoint', '/usr/bin/sleep', CURL_IMAGE, 'infinity'])
  cleanups.push(async () => await run('docker', ['rm', '-f', ANCHOR]))
  for (const compose of found) {
    await t.test(`with ${compose.version}`, async t => { await deployment(t, compose, bridge, originalPolicy, dir) })
  }

  await t.test('the host\'s firewall is as it was', async t => {
    await cleanUp()
    t.equal(await firewall(), firewallBefore, 'iptables-save prints what it printed before')
    t.comment(`the whole run took ${seconds(started)}`)
  })
})
