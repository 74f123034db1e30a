/**
 * Node mode's Docker discovery on a real Docker engine (root only; part of `npm run test:deploy`): `chaperone node
 * run` with `docker:` on this machine, an agent serving it the Delegated Identity API and attesting containers by
 * their labels, and containers (the curl stand-in, sleeping) on a network of their own, like proxy-redirect. It
 * proves: labelled containers on the network are found and served with their own identities, others are not; a
 * container started later is served within a second or two; a restarted one (a new PID, a new namespace) is served
 * again; a stopped one is let go; the network's bridge is guarded and each served namespace has its redirect; and a
 * restarted node proxy adopts what runs again. Everything it made is removed at the end.
 */
import t from 'tap'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { Agent } from '../../../agent/agent'
import { loadAgentConfig } from '../../../agent/config'
import { removeGuard } from '../../../node/network-guard'
import { CLI_SKIP } from '../../helpers/cli'
import { startNodeProxy } from '../../helpers/node-cli'
import type { NodeProxyProcess } from '../../helpers/node-cli'
import { must, run, waitFor } from '../../helpers/command'
import { bridgeNetfilterOn } from './bridge-netfilter'
import { DOCKER_SOCKET, installMissing, startEngine } from './engine'
import { CURL_IMAGE, curlImage, imageId } from './images'

const RUN = `chpdisc${process.pid}`
const NETWORK = `${RUN}-net`
const SCOPE = `io.chaperone.discovery-test=${RUN}`
const TRUST_DOMAIN = 'plant.example'
const NODE_ID = `spiffe://${TRUST_DOMAIN}/node-proxy`
const ADMIN = '127.0.0.1:15210'
const TUNNEL_PORT = 15008
const idOf = (app: string): string => `spiffe://${TRUST_DOMAIN}/discovered/${app}`
const skip = process.getuid?.() !== 0
  ? 'not root: the Docker discovery test may install packages and start dockerd, and the node proxy enters namespaces (CI runs it as root)'
  : CLI_SKIP

interface AppStatus { name: string, state: string, spiffeId?: string, pid?: number, ready: boolean, missing: string[] }

async function status (): Promise<AppStatus[]> {
  const answer = await fetch(`http://${ADMIN}/status`)
  return ((await answer.json()) as { apps: AppStatus[] }).apps
}

/** Polls /status every 50 ms until `check` holds; the time it took. */
async function until (what: string, check: (apps: AppStatus[]) => boolean, ms = 15_000): Promise<number> {
  const since = Date.now()
  await waitFor(what, ms, async () => check(await status().catch(() => [])) ? true : undefined, 50)
  return Date.now() - since
}

const served = (apps: AppStatus[], name: string, pid?: number): boolean =>
  apps.some(app => app.name === name && app.ready && app.spiffeId === idOf(name) && (pid === undefined || app.pid === pid))

/** Starts a sleeping container on the network; labelled: served, with an entry of its own. */
async function startContainer (app: string, labelled = true): Promise<void> {
  const labels = labelled ? ['-l', SCOPE, '-l', `io.chaperone.workload=${app}`] : []
  await must('docker', ['run', '-d', '--name', app, '--network', NETWORK, ...labels, '--entrypoint', '/usr/bin/sleep', CURL_IMAGE, 'infinity'])
}

async function pidOf (app: string): Promise<number> {
  return Number((await must('docker', ['inspect', '--format', '{{.State.Pid}}', app])).trim())
}

void t.test('node mode – Docker discovery on a real engine', { skip, timeout: 900_000 }, async t => {
  const cleanups: Array<() => unknown> = []
  t.teardown(async () => {
    for (const step of cleanups.reverse()) await Promise.resolve(step()).catch((error: Error) => { process.stderr.write(`cleanup: ${error.message}\n`) })
  })
  await installMissing()
  const engine = await startEngine()
  cleanups.push(engine.stop)
  if (await imageId(CURL_IMAGE) === undefined) {
    await curlImage()
    if (!engine.ours) cleanups.push(async () => await run('docker', ['image', 'rm', CURL_IMAGE]))
  }
  cleanups.push(await bridgeNetfilterOn())
  const apps = ['a', 'b', 'late'].map(name => `${RUN}-${name}`)
  const [a, b, late] = apps
  const bystander = `${RUN}-bystander`
  const removeContainers = async (): Promise<unknown> => await run('docker', ['rm', '-f', ...apps, bystander])
  await removeContainers()
  await run('docker', ['network', 'rm', NETWORK])
  await must('docker', ['network', 'create', NETWORK])
  cleanups.push(async () => await run('docker', ['network', 'rm', NETWORK]))
  const bridge = `br-${(await must('docker', ['network', 'inspect', '--format', '{{.Id}}', NETWORK])).trim().slice(0, 12)}`
  cleanups.push(() => { removeGuard({ bridge, tunnelPort: TUNNEL_PORT }) })
  cleanups.push(removeContainers)

  const dir = mkdtempSync(join(tmpdir(), 'chaperone-discovery-'))
  chmodSync(dir, 0o755)
  cleanups.push(() => { rmSync(dir, { recursive: true, force: true }) })
  const file = (name: string, lines: string[]): string => {
    writeFileSync(join(dir, name), `${lines.join('\n')}\n`)
    return join(dir, name)
  }
  const agent = await Agent.start(loadAgentConfig(file('agent.yaml', [
    `trustDomain: ${TRUST_DOMAIN}`, `dataDir: ${join(dir, 'data')}`, `socket: ${join(dir, 'workload.sock')}`, `adminSocket: ${join(dir, 'admin.sock')}`,
    `serverSocket: ${join(dir, 'server.sock')}`, `dockerSocket: ${DOCKER_SOCKET}`, `authorizedDelegates: [${NODE_ID}]`, `delegatedIdentitySocket: ${join(dir, 'delegated.sock')}`
  ])), pino({ level: 'silent' }))
  cleanups.push(async () => { await agent.stop() })
  agent.store.createEntry({ spiffeId: NODE_ID, selectors: ['unix:uid:0'] })
  for (const app of apps) agent.store.createEntry({ spiffeId: idOf(app), selectors: [`docker:label:io.chaperone.workload:${app}`] })
  const config = file('node.yaml', [
    `delegatedIdentityApi: unix://${join(dir, 'delegated.sock')}`, `policy: ${file('policy.yaml', ['version: 1', 'defaultAction: deny', 'rules: []'])}`,
    `admin: ${ADMIN}`, 'readyTimeout: 5s', 'httpPorts: [8080]', `docker: { socket: ${DOCKER_SOCKET}, network: ${NETWORK}, label: "${SCOPE}" }`
  ])

  let node: NodeProxyProcess | undefined
  cleanups.push(async () => {
    await node?.stop()
    if (!t.passing()) t.comment(`the node proxy's last log lines:\n${node?.stderr().split('\n').slice(-60).join('\n') ?? ''}`)
  })

  await startContainer(a)
  await startContainer(b)
  await startContainer(bystander, false)
  node = await startNodeProxy(config)
  const logged = (): string => node?.stderr() ?? ''

  await t.test('labelled containers on the network are found and served, each with its identity', async t => {
    const took = await until(`${a} and ${b} to be served`, apps => served(apps, a) && served(apps, b))
    t.pass(`served ${took} ms after the node proxy said it runs`)
    t.notOk((await status()).some(app => app.name === bystander), 'a container without the label is not')
    const pid = await pidOf(a)
    t.equal((await status()).find(app => app.name === a)?.pid, pid, 'the container\'s own process (State.Pid) was attested')
    const redirect = await must('nsenter', [`--net=/proc/${pid}/ns/net`, 'iptables', '-t', 'nat', '-S'])
    t.match(redirect, /-A CHAPERONE_OUTPUT .*-j REDIRECT --to-ports 15001/, 'its namespace redirects its TCP to the node proxy')
    const guard = await must('iptables', ['-t', 'filter', '-S'])
    t.match(guard, `-i ${bridge} -o ${bridge} -j CHP_GUARD_${bridge}`, `the network's bridge (${bridge}) is guarded`)
    t.match(logged(), /"event":"docker_apps"/, 'the node proxy logged what it found')
  })

  await t.test('a container started later is served within a second or two', async t => {
    const startedAt = Date.now()
    await startContainer(late)
    const started = Date.now() - startedAt
    const took = await until(`${late} to be served`, apps => served(apps, late))
    t.ok(took < 3000, `served ${took} ms after \`docker run\` returned (which took ${started} ms)`)
  })

  await t.test('a restarted container — a new PID, a new namespace — is served again', async t => {
    const before = await pidOf(a)
    await must('docker', ['restart', '-t', '0', a])
    const after = await pidOf(a)
    t.not(after, before, `a new process (${before} → ${after})`)
    const took = await until(`${a} to be served with its new process`, apps => served(apps, a, after))
    t.ok(took < 3000, `served again ${took} ms after \`docker restart\` returned`)
  })

  await t.test('a stopped container is let go', async t => {
    await must('docker', ['stop', '-t', '0', b])
    const took = await until(`${b} to be let go`, apps => !apps.some(app => app.name === b))
    t.ok(took < 3000, `gone from /status ${took} ms after \`docker stop\` returned`)
    // Whichever the node proxy saw first: the process's exit (its pidfd) or Docker's word. Its log comes through a
    // pipe, maybe a moment after /status changed.
    const ended = new RegExp(`"event":"app_(released|lost)"[^\n]*"app":"${b}"|"app":"${b}"[^\n]*"event":"app_(released|lost)"`)
    t.ok(await waitFor('its end to be logged', 3000, async () => ended.test(logged()) ? true : undefined, 50), 'and its end logged')
  })

  await t.test('a restarted node proxy adopts what runs again', async t => {
    await node?.stop()
    node = await startNodeProxy(config)
    const took = await until('every app to be served again', apps => served(apps, a) && served(apps, late) && !apps.some(app => app.name === b))
    t.pass(`served again ${took} ms after it said it runs`)
  })
})
