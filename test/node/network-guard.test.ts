import t from 'tap'
import { installGuard, removeGuard } from '../../node/network-guard'
import { iptablesIn } from '../../proxy'
import { createTopology, IPTABLES_MISSING, NETNS_SKIP } from '../helpers/netns'
import type { Topology } from '../helpers/netns'

// The network guard on a real bridge (root only): between two app namespaces only the tunnel port passes; plain
// TCP to an app's own port and UDP are dropped, replies of admitted connections pass, and removing the guard
// lets plaintext through again (so the drops are the guard's). The rules are scoped to the test's own bridge.

const skip = NETNS_SKIP !== false ? NETNS_SKIP : IPTABLES_MISSING
const TUNNEL = 15008

/** Serves `port` in `to` and reports whether `from` reaches it. */
async function tcpReaches (topology: Topology, from: string, to: string, port: number): Promise<boolean> {
  const address = topology.hosts[to].address
  const server = topology.spawn(to, process.execPath, ['-e', `require('net').createServer(s => s.end('hello')).listen(${port}, '0.0.0.0', () => console.log('up'))`])
  try {
    await new Promise(resolve => server.stdout.once('data', resolve))
    const client = await topology.exec(from, process.execPath, ['-e', `
      const s = require('net').connect(${port}, '${address}')
      const timer = setTimeout(() => { console.log('timeout'); process.exit(0) }, 1500)
      s.on('data', d => { console.log(String(d)); clearTimeout(timer); s.destroy() })
      s.on('error', e => { console.log(e.code); clearTimeout(timer) })`])
    return client.stdout.includes('hello')
  } finally {
    server.kill('SIGKILL')
  }
}

async function udpReaches (topology: Topology, from: string, to: string): Promise<boolean> {
  const address = topology.hosts[to].address
  const server = topology.spawn(to, process.execPath, ['-e', `const s = require('dgram').createSocket('udp4'); s.on('message', m => { console.log('got ' + m); process.exit(0) }); s.bind(5353, () => console.log('up'))`])
  try {
    await new Promise(resolve => server.stdout.once('data', resolve))
    const got = new Promise<boolean>(resolve => {
      server.stdout.on('data', (d: Buffer) => { if (String(d).includes('got plaintext')) resolve(true) })
      setTimeout(() => { resolve(false) }, 1500)
    })
    await topology.exec(from, process.execPath, ['-e', `const s = require('dgram').createSocket('udp4'); s.send('plaintext', 5353, '${address}', () => s.close())`])
    return await got
  } finally {
    server.kill('SIGKILL')
  }
}

void t.test('network guard – between apps only the tunnel port passes, until the guard is removed', { skip }, async t => {
  const topology = await createTopology({ prefix: 'guard', hosts: ['app-a', 'app-b'] })
  const options = { bridge: topology.bridge, tunnelPort: TUNNEL }
  t.teardown(async () => { removeGuard(options); await topology.destroy() })
  t.ok(await tcpReaches(topology, 'app-a', 'app-b', 8080), 'control: without the guard, plain TCP to the app\'s port passes')
  t.ok(await udpReaches(topology, 'app-a', 'app-b'), 'control: and UDP')
  installGuard(options)
  installGuard(options) // idempotent
  t.notOk(await tcpReaches(topology, 'app-a', 'app-b', 8080), 'plain TCP to the app\'s own port is dropped')
  t.notOk(await tcpReaches(topology, 'app-b', 'app-a', 9090), 'either way')
  t.notOk(await udpReaches(topology, 'app-a', 'app-b'), 'UDP between apps is dropped')
  t.ok(await tcpReaches(topology, 'app-a', 'app-b', TUNNEL), 'the tunnel port passes, replies included')
  removeGuard(options)
  t.ok(await tcpReaches(topology, 'app-a', 'app-b', 8080), 'removed: plain TCP passes again, so the drops were the guard\'s')
})

void t.test('network guard – refuses to pretend when bridged traffic skips iptables', async t => {
  t.throws(() => { installGuard({ bridge: 'br-none', tunnelPort: TUNNEL }, iptablesIn(undefined, 'filter'), '/nonexistent/bridge-nf-call-iptables') },
    { code: 'ERR_IPTABLES', message: /br_netfilter.*bridge-nf-call-iptables=1/ })
})
