import t from 'tap'
import { once } from 'node:events'
import { closeSync, readdirSync } from 'node:fs'
import { Socket, connect, createServer } from 'node:net'
import type { Server } from 'node:net'
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls'
import type { TLSSocket } from 'node:tls'
import { createTestCa } from '../../certs-test'
import { Netns, NetnsSockets } from '../../node'
import type { NetnsError } from '../../node'
import { IPTABLES_MISSING, NETNS_SKIP, createTopology } from '../helpers/netns'
import { IPTABLES } from '../helpers/netns-tools'
import { thrown } from '../helpers/errors'

// Sockets made inside a network namespace and served by Node from the node's own: listeners reachable only in
// their namespace (plain and TLS, with the namespace's addresses), outbound connections from the namespace's address
// carrying SO_MARK, connect failures as 'error' events, errno-named errors, and no descriptor leaked.

const fdCount = (): number => readdirSync('/proc/self/fd').length

/** Connects, sends nothing, prints what the server says (or the error code) — run inside a namespace. */
const CLIENT = `const s = require('node:net').connect(Number(process.argv[2]), process.argv[1])
let out = ''; s.on('data', d => { out += d }); s.on('end', () => process.stdout.write(out))
s.on('error', e => { process.stdout.write('error ' + e.code) })`

const TLS_CLIENT = `const s = require('node:tls').connect({ host: process.argv[1], port: Number(process.argv[2]), servername: 'server.test',
  ca: process.env.CA, cert: process.env.CERT, key: process.env.KEY })
let out = ''; s.on('data', d => { out += d }); s.on('end', () => process.stdout.write(out))
s.on('error', e => { process.stdout.write('error ' + e.code) })`

/** Tells each connection where it came from and went to. */
function whoServer (): Server {
  return createServer(s => { s.end(`${s.localAddress}:${s.localPort} from ${s.remoteAddress}`) })
}

async function listening (server: Server, fd: number): Promise<number> {
  server.listen({ fd })
  await once(server, 'listening')
  return (server.address() as { port: number }).port
}

async function closed (server: Server): Promise<void> {
  await new Promise<void>(resolve => server.close(() => { resolve() }))
}

async function readAll (socket: Socket | TLSSocket): Promise<string> {
  let out = ''
  socket.on('data', (chunk: Buffer) => { out += String(chunk) })
  await once(socket, 'end')
  return out
}

async function errorOf (socket: Socket): Promise<NodeJS.ErrnoException> {
  const [error] = await once(socket, 'error') as [NodeJS.ErrnoException]
  return error
}

void t.test('netns sockets', { skip: NETNS_SKIP }, async t => {
  const topology = await createTopology({ prefix: 'nss', hosts: ['a', 'b'] })
  t.teardown(topology.destroy)
  const { a: hostA, b: hostB } = topology.hosts
  const netns = new Netns()
  t.teardown(() => { netns.close() })
  const sockets = new NetnsSockets(netns)
  const a = netns.open(`/var/run/netns/${hostA.ns}`)
  const b = netns.open(`/var/run/netns/${hostB.ns}`)
  const home = netns.homeIdentity

  void t.test('a listener made in a, on port 0, is reachable inside a and not from the root namespace', async t => {
    const listener = sockets.listen(a, { host: '127.0.0.1', port: 0 })
    t.equal(netns.currentIdentity(), home, 'the main thread is back home')
    t.ok(listener.port > 0, `bound port ${listener.port}`)
    const server = whoServer()
    t.teardown(() => closed(server))
    t.equal(await listening(server, listener.fd), listener.port, 'Node serves the descriptor on the bound port')

    const inside = await topology.exec('a', process.execPath, ['-e', CLIENT, '127.0.0.1', String(listener.port)])
    t.equal(inside.stdout, `127.0.0.1:${listener.port} from 127.0.0.1`, 'a process in a connects to it')
    const fromB = await topology.exec('b', process.execPath, ['-e', CLIENT, '127.0.0.1', String(listener.port)])
    t.equal(fromB.stdout, 'error ECONNREFUSED', 'b\'s loopback is another')
    const fromRoot = connect(listener.port, '127.0.0.1')
    t.equal((await errorOf(fromRoot)).code, 'ECONNREFUSED', 'the root namespace\'s loopback has no such listener')
  })

  void t.test('accepted sockets report the namespace\'s addresses', async t => {
    const listener = sockets.listen(a, { host: hostA.address, port: 0, backlog: 16 })
    t.equal(listener.host, hostA.address)
    const server = whoServer()
    t.teardown(() => closed(server))
    await listening(server, listener.fd)
    const fromB = await topology.exec('b', process.execPath, ['-e', CLIENT, hostA.address, String(listener.port)])
    t.equal(fromB.stdout, `${hostA.address}:${listener.port} from ${hostB.address}`)
  })

  void t.test('accepted sockets carry mutual TLS', async t => {
    const ca = createTestCa('node.test')
    const serverSvid = ca.issueSvid('spiffe://node.test/server', { dnsNames: ['server.test'] })
    const clientSvid = ca.issueSvid('spiffe://node.test/client')
    const server = createTlsServer({ key: serverSvid.keyPem, cert: serverSvid.chainPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: true },
      s => { s.end(`tls ${s.getPeerCertificate().subjectaltname} from ${s.remoteAddress}`) })
    t.teardown(() => closed(server))
    const listener = sockets.listen(a, { host: hostA.address, port: 0 })
    await listening(server, listener.fd)
    const env = { CA: ca.certPem, CERT: clientSvid.chainPem, KEY: clientSvid.keyPem }
    const inA = await topology.exec('a', process.execPath, ['-e', TLS_CLIENT, hostA.address, String(listener.port)], { env })
    t.equal(inA.stdout, `tls URI:spiffe://node.test/client from ${hostA.address}`)
    const noCert = await topology.exec('a', process.execPath, ['-e', TLS_CLIENT, hostA.address, String(listener.port)], { env: { CA: ca.certPem } })
    t.match(noCert.stdout, /^error /, 'a client without a certificate is refused by the TLS server')
  })

  void t.test('an outbound socket made in a connects from a\'s address, to a process in b', async t => {
    const echo = topology.spawn('b', process.execPath, ['-e', `require('node:net').createServer(s => s.end('seen ' + s.remoteAddress))
      .listen(7000, '0.0.0.0', () => console.log('listening'))`])
    t.teardown(() => { echo.kill('SIGKILL') })
    await once(echo.stdout, 'data')
    const socket = sockets.connect(a, { host: hostB.address, port: 7000, noDelay: true })
    t.equal(netns.currentIdentity(), home, 'the main thread is back home')
    t.equal(socket.connecting, true, 'returned while connecting')
    await once(socket, 'connect')
    t.equal(socket.localAddress, hostA.address)
    t.equal(socket.remoteAddress, hostB.address)
    t.equal(await readAll(socket), `seen ${hostA.address}`)
  })

  void t.test('an outbound socket carries TLS (tls.connect({ socket })), to a listener in b', async t => {
    const ca = createTestCa('node.test')
    const serverSvid = ca.issueSvid('spiffe://node.test/server', { dnsNames: ['server.test'] })
    const server = createTlsServer({ key: serverSvid.keyPem, cert: serverSvid.chainPem }, s => { s.end(`tls from ${s.remoteAddress}`) })
    t.teardown(() => closed(server))
    const listener = sockets.listen(b, { host: hostB.address, port: 0 })
    await listening(server, listener.fd)
    const socket = sockets.connect(a, { host: hostB.address, port: listener.port })
    const tls = tlsConnect({ socket, ca: ca.certPem, servername: 'server.test' })
    await once(tls, 'secureConnect')
    t.equal(tls.authorized, true)
    t.equal(await readAll(tls), `tls from ${hostA.address}`)
  })

  void t.test('Node\'s behaviour connect() rests on: a socket adopted from a descriptor must connect in the same tick', async t => {
    // A Socket made from a descriptor starts reading at once; an unconnected TCP socket polls as hung up, so once
    // the event loop has polled, the read fails and destroys it. connect() therefore adopts and connects together.
    const late = new Socket({ fd: sockets.socket(a) })
    await new Promise(resolve => setImmediate(resolve))
    const error = await errorOf(late)
    t.match(error, { code: 'ENOTCONN', syscall: 'read' })
    t.equal(late.destroyed, true)
  })

  void t.test('a refused connection is an \'error\' event (ECONNREFUSED)', async t => {
    const refused = await errorOf(sockets.connect(a, { host: hostB.address, port: 7001 }))
    t.match(refused, { code: 'ECONNREFUSED', syscall: 'connect', address: hostB.address, port: 7001 })
    const local = await errorOf(sockets.connect(a, { host: '127.0.0.1', port: 7001 }))
    t.equal(local.code, 'ECONNREFUSED')
  })

  void t.test('SO_MARK: the packets of a marked socket carry the mark', { skip: IPTABLES_MISSING }, async t => {
    const server = whoServer()
    t.teardown(() => closed(server))
    const listener = sockets.listen(b, { host: hostB.address, port: 0 })
    await listening(server, listener.fd)
    const port = String(listener.port)
    const iptables = async (...args: string[]): Promise<string> => {
      const r = await topology.exec('a', IPTABLES as string, ['-w', ...args])
      if (r.status !== 0) throw new Error(`iptables ${args.join(' ')}: ${r.stderr}`)
      return r.stdout
    }
    // rule 1 only counts packets marked 42; rule 2 drops those marked 43
    await iptables('-A', 'OUTPUT', '-p', 'tcp', '-d', hostB.address, '--dport', port, '-m', 'mark', '--mark', '42')
    await iptables('-A', 'OUTPUT', '-p', 'tcp', '-d', hostB.address, '--dport', port, '-m', 'mark', '--mark', '43', '-j', 'DROP')
    const counted = async (): Promise<number> => Number((await iptables('-L', 'OUTPUT', '1', '-n', '-v', '-x')).trim().split(/\s+/)[0])

    t.equal(await readAll(sockets.connect(a, { host: hostB.address, port: listener.port })), `${hostB.address}:${port} from ${hostA.address}`)
    t.equal(await counted(), 0, 'an unmarked connection is not counted')
    t.equal(await readAll(sockets.connect(a, { host: hostB.address, port: listener.port, mark: 42 })), `${hostB.address}:${port} from ${hostA.address}`)
    t.ok(await counted() >= 3, 'the marked connection\'s packets are counted (handshake, then more)')

    const dropped = sockets.connect(a, { host: hostB.address, port: listener.port, mark: 43, timeoutMs: 300 })
    const error = await errorOf(dropped) as unknown as NetnsError
    t.equal(error.code, 'ERR_NETNS_CONNECT_TIMEOUT', 'a connection whose mark is dropped times out, as an \'error\' event')
    t.match(error.message, `${hostB.address}:${port} from network namespace /var/run/netns/${hostA.ns} took over 300 ms`)
    t.equal(dropped.destroyed, true)
  })

  void t.test('failures name the errno and what to check', async t => {
    const other = thrown(() => sockets.listen(a, { host: hostB.address, port: 0 })) as NetnsError
    t.match(other, { code: 'ERR_NETNS_SOCKET', errno: 'EADDRNOTAVAIL', syscall: 'bind', message: /is not an address of network namespace/ })

    const first = sockets.listen(a, { host: '127.0.0.1', port: 0 })
    t.teardown(() => { closeSync(first.fd) })
    const taken = thrown(() => sockets.listen(a, { host: '127.0.0.1', port: first.port })) as NetnsError
    t.match(taken, { code: 'ERR_NETNS_SOCKET', errno: 'EADDRINUSE', message: /already uses 127\.0\.0\.1:\d+/ })
    const inB = sockets.listen(b, { host: '127.0.0.1', port: first.port })
    t.equal(inB.port, first.port, 'the same port is free in another namespace')
    closeSync(inB.fd)

    for (const [what, fn] of [
      ['a name', () => sockets.listen(a, { host: 'localhost', port: 0 })],
      ['IPv6', () => sockets.listen(a, { host: '::1', port: 0 })],
      ['a port out of range', () => sockets.listen(a, { host: '127.0.0.1', port: 65536 })],
      ['port 0 to connect to', () => sockets.connect(a, { host: '127.0.0.1', port: 0 })],
      ['a mark out of range', () => sockets.socket(a, { mark: 2 ** 32 })],
      ['a name to connect to', () => sockets.connect(a, { host: 'example.com', port: 80 })]
    ] as const) {
      t.equal(thrown(fn).code, 'ERR_NETNS_ADDRESS_INVALID', what)
    }
    t.equal(netns.currentIdentity(), home)
  })

  void t.test('no descriptor leaks, on success and on every failure', async t => {
    const server = whoServer()
    const cycle = async (): Promise<void> => {
      const listener = sockets.listen(a, { host: '127.0.0.1', port: 0 })
      await listening(server, listener.fd)
      thrown(() => sockets.listen(a, { host: '127.0.0.1', port: listener.port }))
      thrown(() => sockets.listen(a, { host: hostB.address, port: 0 }))
      thrown(() => sockets.connect(a, { host: 'localhost', port: 1 }))
      const ok = sockets.connect(a, { host: '127.0.0.1', port: listener.port })
      await readAll(ok)
      await once(ok, 'close')
      const refused = sockets.connect(a, { host: '127.0.0.1', port: 1 })
      await errorOf(refused)
      await once(refused, 'close')
      closeSync(sockets.socket(b, { mark: 1 }))
      await closed(server)
    }
    await cycle() // warms up whatever Node opens once
    const before = fdCount()
    for (let i = 0; i < 10; i++) await cycle()
    t.equal(fdCount(), before)
    t.equal(netns.currentIdentity(), home)
  })
})
