/**
 * Docker discovery (node/docker-discovery.ts, docker-listing.ts, docker-engine.ts) against a stand-in Engine on a
 * Unix socket: the first listing, events that make it list again within a moment (and those that do not), dockerd
 * going away and coming back (the apps found last kept meanwhile), a missing network, bad labels logged once,
 * PIDs pinned to their namespaces, and the Engine's failures as errors with stable codes. The apps' processes
 * are real (sleep), so their namespaces can be read. The real Engine: test/deploy/live/docker-discovery.ts.
 */
import t from 'tap'
import type { Test } from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { DockerDiscovery } from '../../node/docker-discovery'
import { DockerEngine } from '../../node/docker-engine'
import type { DockerListing } from '../../node/docker-listing'
import { netnsIdentity } from '../../node/netns'
import { FakeDockerEngine } from '../helpers/fake-docker-engine'
import type { FakeNetwork } from '../helpers/fake-docker-engine'
import { waitFor } from '../helpers/command'

const NETWORK: FakeNetwork = { id: '5e0c7b3a91d24f6e8a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071', name: 'proxy-redirect', subnet: '172.23.0.0/16' }
const LABEL = 'io.chaperone.workload'
const id = (n: number): string => n.toString(16).padStart(64, 'c')

interface Stand {
  engine: FakeDockerEngine
  listings: DockerListing[]
  logs: Array<Record<string, unknown>>
  /** The discovery, started at the first call. */
  discovery: () => DockerDiscovery
  /** A process to stand for a container's: a sleep of our own. */
  sleeper: () => number
  /** Waits for the next listing handed to the node proxy. */
  nextListing: (after: number) => Promise<DockerListing>
}

async function stand (t: Test, options: { network?: FakeNetwork, found?: (listing: DockerListing) => Promise<void> } = {}): Promise<Stand> {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-docker-'))
  const engine = await FakeDockerEngine.start(join(dir, 'docker.sock'), 'network' in options ? options.network : NETWORK)
  const listings: DockerListing[] = []
  const logs: Array<Record<string, unknown>> = []
  const logger = pino({ level: 'debug' }, { write: (line: string) => { logs.push(JSON.parse(line) as Record<string, unknown>) } })
  const sleeps: Array<ReturnType<typeof spawn>> = []
  let discovery: DockerDiscovery | undefined
  t.teardown(async () => {
    discovery?.close()
    for (const sleep of sleeps) sleep.kill('SIGKILL')
    await engine.stop()
    rmSync(dir, { recursive: true, force: true })
  })
  return {
    engine,
    listings,
    logs,
    sleeper: () => {
      const sleep = spawn('sleep', ['1000'], { stdio: 'ignore' })
      sleeps.push(sleep)
      return sleep.pid ?? 0
    },
    discovery: () => {
      discovery ??= new DockerDiscovery({
        docker: { socket: engine.socket, network: NETWORK.name, label: LABEL },
        httpPorts: new Set([8080]),
        logger,
        debounceMs: 50,
        backoff: { initialMs: 50, maxMs: 200 },
        found: async listing => {
          listings.push(listing)
          await options.found?.(listing)
        }
      })
      return discovery
    },
    nextListing: async after => await waitFor(`listing ${after + 1}`, 5000, async () => listings[after], 10)
  }
}

void t.test('docker discovery – lists the labelled running containers on the network, each pinned to its namespace', async t => {
  const s = await stand(t)
  const pid = s.sleeper()
  s.engine.add({ id: id(1), name: 'billing', pid, labels: { [LABEL]: 'billing', 'chaperone.http-ports': '9090' } })
  s.engine.add({ id: id(2), name: 'unlabelled', pid: s.sleeper() })
  await s.discovery().firstListing
  const [listing] = s.listings
  t.equal(listing?.network?.bridge, `br-${NETWORK.id.slice(0, 12)}`, 'the network\'s bridge')
  t.same(listing?.network?.subnets.map(n => n.text), [NETWORK.subnet], 'its subnet')
  t.same(listing?.apps.map(app => app.name), ['billing'], 'only the labelled container')
  t.equal(listing?.apps[0]?.netnsIdentity, netnsIdentity(`/proc/${pid}/ns/net`), 'pinned to the namespace its PID is in')
  t.same([...listing?.apps[0]?.httpPorts ?? []], [9090])
  const list = s.engine.requests.find(path => path.startsWith('/containers/json'))
  t.same(JSON.parse(new URL(`http://x${list ?? ''}`).searchParams.get('filters') ?? ''), { network: [NETWORK.id], status: ['running'], label: [LABEL] }, 'Docker filters by network, state and label')
  t.ok(s.engine.requests[0]?.startsWith('/events?'), 'the event stream is opened before the first listing, so nothing between is missed')
})

void t.test('docker discovery – a container started, restarted or stopped is seen within a moment; other events are not followed', async t => {
  const s = await stand(t)
  await s.discovery().firstListing
  t.same(s.listings[0]?.apps, [], 'none at first')
  const at = Date.now()
  const first = s.sleeper()
  s.engine.add({ id: id(1), name: 'billing', pid: first, labels: { [LABEL]: 'billing' } })
  s.engine.emit('container', 'start', { id: id(1), attributes: { name: 'billing' } })
  const started = await s.nextListing(1)
  t.same(started.apps.map(app => app.pid), [first], `a start: listed again in ${Date.now() - at} ms`)
  const second = s.sleeper()
  s.engine.add({ id: id(1), name: 'billing', pid: second, labels: { [LABEL]: 'billing' } })
  for (const action of ['die', 'start', 'restart']) s.engine.emit('container', action, { id: id(1) })
  const restarted = await s.nextListing(2)
  t.same(restarted.apps.map(app => app.netns), [`/proc/${second}/ns/net`], 'a restart: the new PID (a burst of events is one listing)')
  s.engine.containers.delete(id(1))
  s.engine.emit('network', 'disconnect', { id: NETWORK.id, attributes: { name: NETWORK.name, container: id(1) } })
  t.same((await s.nextListing(3)).apps, [], 'disconnected from the network: let go')
  const requests = s.engine.requests.length
  s.engine.emit('network', 'connect', { id: 'f0e1d2c3b4a5', attributes: { name: 'bridge', container: id(9) } })
  s.engine.emit('container', 'die', { id: id(9) })
  await waitFor('the listing after the die', 5000, async () => s.engine.requests.length > requests ? true : undefined)
  await new Promise(resolve => setTimeout(resolve, 200))
  t.equal(s.listings.length, 4, 'a listing that found the same is not handed on')
  t.notOk(s.engine.requests.slice(requests).filter(path => path.startsWith('/networks/')).length > 1, 'another network\'s event made no listing of its own')
})

void t.test('docker discovery – dockerd goes away: the apps found last stay, and it is followed again once back', async t => {
  const s = await stand(t)
  s.engine.add({ id: id(1), name: 'billing', pid: s.sleeper(), labels: { [LABEL]: 'billing' } })
  await s.discovery().firstListing
  await s.engine.stop()
  await waitFor('the loss to be logged', 5000, async () => s.logs.find(line => line.event === 'docker_unreachable'))
  const lost = s.logs.find(line => line.event === 'docker_unreachable')
  t.equal(lost?.code, 'ERR_NODE_DOCKER_UNREACHABLE', `logged: ${String(lost?.err)}`)
  t.match(lost?.err, /dockerd stopped or restarted\?/, 'saying what to check')
  await new Promise(resolve => setTimeout(resolve, 500))
  t.equal(s.listings.length, 1, 'nothing handed on while it is away: what runs is served on')
  t.ok(s.logs.filter(line => line.event === 'docker_unreachable').length >= 2, 'tried again, with backoff')
  s.engine.add({ id: id(2), name: 'metering', pid: s.sleeper(), labels: { [LABEL]: 'metering' } })
  await s.engine.restart()
  const back = await s.nextListing(1)
  t.same(back.apps.map(app => app.name), ['billing', 'metering'], 'back: listed in full, what started meanwhile too')
  t.equal(s.engine.openStreams, 1, 'one event stream again')
})

void t.test('docker discovery – no network: no app, said once; created: found', async t => {
  const s = await stand(t, { network: undefined })
  await s.discovery().firstListing
  t.same(s.listings[0], { apps: [], problems: s.listings[0]?.problems }, 'no network, no app')
  const said = s.logs.filter(line => line.event === 'docker_problem')
  t.equal(said[0]?.code, 'ERR_NODE_DOCKER_NETWORK_NOT_FOUND')
  t.match(said[0]?.err, 'docker network create proxy-redirect', 'saying how to make it')
  s.engine.emit('container', 'start', { id: id(5) })
  await waitFor('a second listing', 5000, async () => s.engine.requests.filter(path => path.startsWith('/networks/')).length >= 2 ? true : undefined)
  await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(s.logs.filter(line => line.event === 'docker_problem').length, 1, 'said once while it lasts')
  s.engine.network = NETWORK
  s.engine.emit('network', 'create', { id: NETWORK.id, attributes: { name: NETWORK.name, type: 'bridge' } })
  t.equal((await s.nextListing(1)).network?.id, NETWORK.id, 'the network\'s creation is seen')
})

void t.test('docker discovery – a bad label is logged once, naming the container and the label', async t => {
  const s = await stand(t)
  s.engine.add({ id: id(1), name: 'billing', pid: s.sleeper(), labels: { [LABEL]: 'billing', 'chaperone.exclude-inbound-ports': 'all' } })
  await s.discovery().firstListing
  s.engine.add({ id: id(2), name: 'metering', pid: s.sleeper(), labels: { [LABEL]: 'metering' } })
  s.engine.emit('container', 'start', { id: id(2) })
  await s.nextListing(1)
  const said = s.logs.filter(line => line.event === 'docker_problem')
  t.equal(said.length, 1, 'once')
  t.equal(said[0]?.code, 'ERR_NODE_DOCKER_LABEL_INVALID')
  t.match(said[0]?.err, 'container billing: label chaperone.exclude-inbound-ports="all"')
  t.same(s.listings[1]?.apps.map(app => [app.name, app.excludeInboundPorts]), [['billing', []], ['metering', []]], 'served, excluding nothing')
})

void t.test('docker discovery – a container whose process is gone is not listed', async t => {
  const s = await stand(t)
  const exited = spawn('true')
  await once(exited, 'exit')
  s.engine.add({ id: id(1), name: 'gone', pid: exited.pid ?? 0, labels: { [LABEL]: 'gone' } })
  await s.discovery().firstListing
  t.same(s.listings[0]?.apps, [], 'no namespace to pin it to')
  t.same(s.listings[0]?.problems, [], 'and nothing to fix')
})

void t.test('docker discovery – the first listing fails if the node proxy cannot apply it', async t => {
  const s = await stand(t, { found: async () => { throw Object.assign(new Error('no bridge-nf-call-iptables'), { code: 'ERR_IPTABLES' }) } })
  await t.rejects(s.discovery().firstListing, { message: 'no bridge-nf-call-iptables' })
  t.equal(s.logs.find(line => line.event === 'docker_apps_not_applied')?.code, 'ERR_IPTABLES', 'and it is logged with its code')
})

void t.test('docker engine – failures say what to check, with stable codes', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-docker-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  await t.rejects(new DockerEngine(join(dir, 'none.sock')).getJson('/version'), { code: 'ERR_NODE_DOCKER_UNREACHABLE', message: /is dockerd running, and is its socket mounted/ }, 'no socket')
  const fake = await FakeDockerEngine.start(join(dir, 'docker.sock'), NETWORK)
  t.teardown(async () => { await fake.stop() })
  const engine = new DockerEngine(fake.socket, 300)
  await t.rejects(engine.getJson('/containers/abc/json'), { code: 'ERR_NODE_DOCKER_RESPONSE', status: 404, message: /HTTP 404: No such container: abc/ }, 'an error answer, in Docker\'s words')
  fake.hang = true
  await t.rejects(engine.getJson('/containers/json'), { code: 'ERR_NODE_DOCKER_TIMEOUT', message: /did not answer GET \/containers\/json within 300 ms/ }, 'no answer in time')
  const odd = createServer((_req, res) => { res.end('<html>not docker</html>') })
  odd.listen(join(dir, 'odd.sock'))
  await once(odd, 'listening')
  t.teardown(() => { odd.close() })
  await t.rejects(new DockerEngine(join(dir, 'odd.sock')).getJson('/version'), { code: 'ERR_NODE_DOCKER_RESPONSE', message: /not JSON/ }, 'not JSON')
  const ended = await new Promise<Error>(resolve => {
    new DockerEngine(join(dir, 'odd.sock')).events({ type: ['container'] }, { opened: () => undefined, event: () => undefined, ended: resolve })
  })
  t.match(ended, { code: 'ERR_NODE_DOCKER_RESPONSE', message: /not JSON/ }, 'an event stream that is not events')
})
