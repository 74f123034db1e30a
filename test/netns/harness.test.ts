import t from 'tap'
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { NETNS_SKIP, SETPRIV_MISSING, TCPDUMP_MISSING, cleanupStale, createTopology } from '../helpers/netns'
import type { Topology } from '../helpers/netns'
import { listLinks, listNamespaces } from '../helpers/netns-tools'

// The namespace harness itself: real namespaces, veths and a bridge; TCP between hosts, another user inside a
// host, a capture on the bridge, and teardown on every path (destroy, an uncaught error, a signal, SIGKILL).

const ECHO_SERVER = `require('node:net').createServer(s => s.once('data', d => s.end(
  'from ' + s.localAddress + ' to ' + s.remoteAddress + ': ' + d))).listen(7000, '0.0.0.0', () => console.log('listening'))`
const CLIENT = `const s = require('node:net').connect(7000, process.argv[1], () => s.write(process.argv[2]))
let out = ''; s.on('data', d => { out += d }); s.on('end', () => process.stdout.write(out))`

/** Namespaces and root-namespace links still present among `names`. */
function remaining (names: string[]): string[] {
  const present = new Set([...listNamespaces(), ...listLinks()])
  return names.filter(name => present.has(name))
}

function namesOf (topology: Topology): string[] {
  const hosts = Object.values(topology.hosts)
  return [topology.bridge, ...hosts.map(h => h.ns), ...hosts.map(h => h.veth)]
}

/** True once `pid` is gone or a zombie (killed, waiting for whoever reaps orphans); polls for 3 s. */
async function dead (pid: number): Promise<boolean> {
  for (let i = 0; i < 60; i++) {
    try {
      if (readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') === true) return true
    } catch {
      return true
    }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return false
}

async function firstLine (child: ChildProcess): Promise<string> {
  let out = ''
  for await (const chunk of child.stdout!) {
    out += String(chunk)
    if (out.includes('\n')) return out.slice(0, out.indexOf('\n'))
  }
  throw new Error(`exited before a line: ${out}`)
}

void t.test('netns harness – a topology of two hosts', { skip: NETNS_SKIP }, async t => {
  const topology = await createTopology({ prefix: 'chh', hosts: ['alpha', 'beta'] })
  t.teardown(topology.destroy)
  const { alpha, beta } = topology.hosts as Record<'alpha' | 'beta', Topology['hosts'][string]>

  void t.test('two hosts talk TCP over the bridge, unchanged addresses both ways', async t => {
    const server = topology.spawn('beta', process.execPath, ['-e', ECHO_SERVER])
    t.teardown(() => { server.kill('SIGKILL') })
    t.equal(await firstLine(server), 'listening')
    const reply = await topology.exec('alpha', process.execPath, ['-e', CLIENT, beta.address, 'hello'])
    t.equal(reply.stderr, '')
    t.equal(reply.stdout, `from ${beta.address} to ${alpha.address}: hello`)

    const socket = connect(7000, beta.address)
    socket.end('from the root namespace')
    const [fromRoot] = await once(socket, 'data') as [Buffer]
    t.equal(String(fromRoot), `from ${beta.address} to ${topology.bridgeAddress}: from the root namespace`, 'the root namespace reaches a host over the bridge')
  })

  void t.test('a host sees only lo and eth0, with a default route via the bridge', async t => {
    const links = await topology.exec('alpha', 'ip', ['-o', 'link', 'show'])
    t.same(links.stdout.trim().split('\n').map(line => line.split(/:? /)[1]?.replace(/@.*/, '')), ['lo', 'eth0'])
    const routes = await topology.exec('alpha', 'ip', ['route', 'show', 'default'])
    t.match(routes.stdout, `default via ${topology.bridgeAddress} dev eth0`)
  })

  void t.test('a capture on the bridge holds what the hosts sent in plaintext', { skip: TCPDUMP_MISSING }, async t => {
    const server = topology.spawn('beta', process.execPath, ['-e', ECHO_SERVER])
    t.teardown(() => { server.kill('SIGKILL') })
    await firstLine(server)
    const capture = await topology.capture('tcp port 7000')
    const marker = `marker-${process.pid}-${Date.now()}`
    const reply = await topology.exec('alpha', process.execPath, ['-e', CLIENT, beta.address, marker])
    t.match(reply.stdout, marker)
    const pcap = await capture.stop()
    t.equal(pcap.readUInt32LE(0), 0xa1b2c3d4, 'a pcap file (microsecond, little-endian)')
    t.ok(pcap.includes(`from ${beta.address} to ${alpha.address}: ${marker}`), 'the reply is in the capture')
    t.ok(pcap.includes(marker), 'the marker is in the capture')
    t.equal(await capture.stop(), pcap, 'stop() again returns the same capture')
  })

  void t.test('a process spawned with a uid runs as that user, without capabilities', { skip: SETPRIV_MISSING }, async t => {
    const child = topology.spawn('alpha', 'cat', ['/proc/self/status'], { uid: 65534, gid: 65534 })
    let status = ''
    child.stdout.on('data', (chunk: Buffer) => { status += String(chunk) })
    await once(child, 'close')
    const field = (name: string): string => new RegExp(`^${name}:[ \\t]*(.*)$`, 'm').exec(status)?.[1]?.trim() ?? ''
    t.same(field('Uid').split(/\s+/), ['65534', '65534', '65534', '65534'], 'real, effective, saved and fs uid')
    t.same(field('Gid').split(/\s+/), ['65534', '65534', '65534', '65534'])
    t.equal(field('Groups'), '')
    t.equal(field('CapEff'), '0000000000000000')
    t.equal((await topology.exec('alpha', 'id', ['-u'], { uid: 65534 })).stdout, '65534\n')
    t.equal((await topology.exec('alpha', 'id', ['-u'])).stdout, '0\n', 'root without a uid')
  })
})

void t.test('netns harness – destroy kills every process in the hosts, removes every name, and may be called again', { skip: NETNS_SKIP }, async t => {
  const topology = await createTopology({ prefix: 'chh', hosts: ['one', 'two', 'three'] })
  t.teardown(topology.destroy)
  const names = namesOf(topology)
  t.same(remaining(names), names, 'all there while the topology lives')
  const sleeper = topology.spawn('two', 'sleep', ['600'])
  // a process in its own session, outside any group the harness started: found through `ip netns pids`
  const escaped = await topology.exec('three', 'sh', ['-c', 'setsid sleep 600 >/dev/null 2>&1 & echo $!'])
  const sleeperExit = once(sleeper, 'exit')
  await topology.destroy()
  t.same(await sleeperExit, [null, 'SIGKILL'])
  t.ok(await dead(Number(escaped.stdout)), 'the escaped process is killed')
  t.same(remaining(names), [], 'no namespace or link of the run remains')
  await topology.destroy()
  t.throws(() => topology.spawn('one', 'true'), /destroyed/)
})

void t.test('netns harness – a test that dies leaves nothing behind', { skip: NETNS_SKIP }, async t => {
  const fixture = join(__dirname, 'fixtures', 'crashing-run.ts')
  // tap's TypeScript loader, without its coverage hook
  const loader = process.execArgv.filter(arg => !arg.includes('processinfo'))
  const start = async (mode: string): Promise<{ child: ChildProcess, names: string[], sleeper: number }> => {
    const child = spawn(process.execPath, [...loader, fixture, 'chc', mode], {
      stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' }
    })
    let stderr = ''
    child.stderr?.on('data', (chunk: Buffer) => { stderr += String(chunk) })
    const line = await firstLine(child).catch((error: Error) => { throw new Error(`${error.message}; stderr: ${stderr}`) })
    const { names, sleeper } = JSON.parse(line) as { names: string[], sleeper: number }
    t.same(remaining(names), names, `${mode}: the child's topology is up`)
    return { child, names, sleeper }
  }

  const thrown = await start('throw')
  t.same(await once(thrown.child, 'exit'), [1, null], 'an uncaught error')
  t.same(remaining(thrown.names), [], 'the exit hook swept it')
  t.ok(await dead(thrown.sleeper))

  const terminated = await start('term')
  terminated.child.kill('SIGTERM')
  t.same(await once(terminated.child, 'exit'), [null, 'SIGTERM'], 'still dies of the signal')
  t.same(remaining(terminated.names), [], 'the signal hook swept it')
  t.ok(await dead(terminated.sleeper))

  const killed = await start('kill')
  killed.child.kill('SIGKILL')
  await once(killed.child, 'exit')
  t.same(remaining(killed.names), killed.names, 'SIGKILL leaves the topology behind')
  const live = await createTopology({ prefix: 'chc', hosts: ['live'] })
  t.teardown(live.destroy)
  t.same(remaining(killed.names), [], 'the next createTopology swept the dead run')
  t.ok(await dead(killed.sleeper), 'and killed its process')
  const removed = cleanupStale('chc')
  t.same(namesOf(live).filter(name => removed.includes(name)), [], 'cleanupStale leaves the live run alone')
  t.same(remaining(namesOf(live)), namesOf(live))
})
