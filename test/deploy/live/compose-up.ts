/**
 * `npm run test:deploy`: the repository's docker-compose.yml and docker-compose.node.yml, unmodified, on a real
 * Docker engine (docker-discovery.ts, run with it, tries node mode's discovery on its own). Not part of
 * `npm test` (it installs Debian packages, may start dockerd and builds images: minutes, not seconds); .ci/run runs
 * it after the unit tests.
 *
 * It installs what is missing, starts dockerd when none runs (engine.ts), builds the images on this machine with no
 * registry (images.ts: the two sample images are stand-ins under their names) and creates the external network
 * proxy-redirect. Then, with each Compose (composes.ts: Debian's docker-compose 1.29 and Compose v2), it starts
 * capturing on the network's bridge, and only then runs `up`, and proves: app-a's calls reach
 * app-b with app-a's ID in X-Forwarded-Client-Cert; a call the policy denies is refused and logged, and a container
 * with no sidecar gets nothing from app-b; a policy edit applies live; identities (CA and entries) survive `down` +
 * `up`; every byte captured between the apps, from before each `up`, is TLS. Then node mode (node-mode.ts), with
 * one Compose: the apps with only a label, one node proxy for both, the same proofs. Last, the host's firewall is
 * as it was. Everything it created is removed at the end, also when a check fails.
 */
import t, { type Test } from 'tap'
import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { findTool } from '../../helpers/netns-tools'
import type { BridgeCapture } from './capture'
import { must, run, waitFor } from '../../helpers/command'
import { installMissing, startEngine } from './engine'
import { composes, type Compose } from './composes'
import { buildImages, CURL_IMAGE } from './images'
import { APP_A, NETWORK, ROGUE_PATH, callFromAppA, expectAppBToldAppA, expectDownLeavesNothing, expectOnlyTls, logs, openDeployment, requestsAtAppB, rogueCallFails, seconds, upUntilHello } from './deployment'
import type { Deployment } from './deployment'
import { nodeModeDeployment, TUNNEL_PORT } from './node-mode'
import { bridgeNetfilterOn } from './bridge-netfilter'
import { removeGuard } from '../../../node/network-guard'

const ROOT = join(__dirname, '..', '..', '..')
const PROJECT = 'chaperonedeploytest'
/** The container with no sidecar on proxy-redirect (see its start). */
const ANCHOR = `${PROJECT}-no-sidecar`
const ADMIN = ['--admin-socket', '/run/chaperone-admin/admin.sock']
/** The sidecars' apps' port, which their connections go to. */
const APP_PORT = 8080
const skip = process.getuid?.() !== 0
  ? 'not root: the deployment test installs packages, may start dockerd and captures on a bridge (CI runs it as root)'
  : false

/** iptables-save of the host without its comment lines (they carry a date), or '' without iptables. */
async function firewall (): Promise<string> {
  const save = findTool('iptables-save')
  if (save === undefined) return ''
  return (await must(save, [])).split('\n').filter(line => !line.startsWith('#')).join('\n')
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

/** The deployment's checks with one Compose, from `up` to `down -v`, capturing on `bridge` from before `up`. */
async function deployment (t: Test, compose: Compose, bridge: string, originalPolicy: string, dir: string): Promise<void> {
  const d = await openDeployment(t, compose, { project: PROJECT, file: 'docker-compose.yml', dir, bridge })
  writePolicy(d, originalPolicy)
  const capture = d.capture

  const first = await capture('first-up')
  let second: BridgeCapture | undefined
  await upUntilHello(t, d, 'up')

  await t.test('app-a reaches app-b, and app-b is told app-a\'s verified ID', async t => {
    await expectAppBToldAppA(t, d)
  })

  await t.test('a call the policy denies is refused and logged; a container with no sidecar gets nothing', async t => {
    const before = (await requestsAtAppB(d)).length
    t.equal(await callFromAppA(d, '-X', 'POST', '--data', 'x'), '403', 'POST from app-a: 403 from its sidecar')
    const denied = (await logs(d, 'sidecar-a')).filter(line => line.includes('"event":"denied"'))
    t.ok(denied.some(line => line.includes('POST')), `sidecar-a logged the denial: ${denied.at(-1) ?? 'nothing'}`)
    await rogueCallFails(t, ANCHOR)
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
    await expectOnlyTls(t, first, { calls: APP_PORT })
  })

  await t.test('identities survive down and up', async t => {
    const before = await identities(d)
    await d.composeMust('down')
    second = await capture('second-up')
    await upUntilHello(t, d, 'up again')
    const after = await identities(d)
    t.equal(after.bundle, before.bundle, 'the same CA')
    t.equal(after.entries, before.entries, 'the same entries')
    const last = (await requestsAtAppB(d)).at(-1)
    t.match(last?.headers['X-Forwarded-Client-Cert']?.[0], `URI=${APP_A}`, 'app-b is told app-a\'s ID again')
  })

  await t.test('the second up: nothing but TLS again, from the first packet', async t => {
    if (second === undefined) t.fail('no capture: the second up did not happen')
    else await expectOnlyTls(t, second, { calls: APP_PORT })
  })

  await t.test('down -v leaves no container and no volume', async t => {
    await expectDownLeavesNothing(t, d, PROJECT)
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
  for (const file of ['docker-compose.yml', 'docker-compose.node.yml']) cpSync(join(ROOT, file), join(dir, file))
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
  // Node mode with one Compose (the last: Compose v2 unless CHAPERONE_COMPOSE names another), to keep the run short.
  // Its node proxy leaves the guard on the bridge when it stops, by design; the test takes it away at the end.
  const nodeCompose = found[found.length - 1]
  const bridgeNetfilterOff = await bridgeNetfilterOn()
  cleanups.push(async () => { bridgeNetfilterOff() })
  cleanups.push(async () => { removeGuard({ bridge, tunnelPort: TUNNEL_PORT }) })
  await t.test(`node mode, with ${nodeCompose.version}`, async t => { await nodeModeDeployment(t, nodeCompose, { bridge, dir, rogue: ANCHOR }) })

  await t.test('the host\'s firewall is as it was', async t => {
    await cleanUp()
    t.equal(await firewall(), firewallBefore, 'iptables-save prints what it printed before')
    t.comment(`the whole run took ${seconds(started)}`)
  })
})
