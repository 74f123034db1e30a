import t from 'tap'
import { once } from 'node:events'
import { connect, createServer } from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import { parseTunnelHeader, readTunnelHeader, tunnelHeader } from '../../proxy/steps/tunnel-header'

// The tunnel header (node mode): the outbound node proxy names the app port its app called in a PROXY protocol v2
// header, the first bytes inside mutual TLS to the destination's tunnel port. The reader must find the port in any
// split of the bytes, leave what follows for the app, and refuse anything that is not such a header, with a reason.

const SIGNATURE = Buffer.from('\r\n\r\n\0\r\nQUIT\n', 'latin1')

void t.test('tunnel header – round trip for IPv4 and IPv6, and an independent reading of the bytes', async t => {
  const v4 = tunnelHeader({ host: '198.18.0.2', port: 40000 }, { host: '198.18.0.3', port: 8080 })
  t.same(v4.subarray(0, 12), SIGNATURE)
  t.equal(v4[12], 0x21, 'version 2, command PROXY')
  t.equal(v4[13], 0x11, 'TCP over IPv4')
  t.equal(v4.readUInt16BE(14), 12, 'addresses only')
  t.same([...v4.subarray(16, 20)], [198, 18, 0, 2])
  t.same([...v4.subarray(20, 24)], [198, 18, 0, 3])
  t.equal(v4.readUInt16BE(26), 8080)
  t.same(parseTunnelHeader(v4), { port: 8080, length: 28 })
  const v6 = tunnelHeader({ host: 'fd00::2', port: 40000 }, { host: 'fd00::3', port: 9090 })
  t.equal(v6[13], 0x21, 'TCP over IPv6')
  t.same(parseTunnelHeader(v6), { port: 9090, length: 52 })
})

void t.test('tunnel header – incomplete bytes ask for more at every split', async t => {
  const header = tunnelHeader({ host: '198.18.0.2', port: 1 }, { host: '198.18.0.3', port: 443 })
  for (let i = 0; i < header.length; i++) t.equal(parseTunnelHeader(header.subarray(0, i)), undefined, `${i} bytes`)
})

void t.test('tunnel header – refuses what is no tunnel header, saying why', async t => {
  const good = tunnelHeader({ host: '198.18.0.2', port: 1 }, { host: '198.18.0.3', port: 443 })
  const altered = (offset: number, value: number): Buffer => { const copy = Buffer.from(good); copy[offset] = value; return copy }
  const cases: Array<[string, Buffer, RegExp]> = [
    ['plain HTTP', Buffer.from('GET / HTTP/1.1\r\n'), /did not start with a tunnel header/],
    ['a first byte wrong', altered(0, 0x0e), /did not start/],
    ['command LOCAL', altered(12, 0x20), /not PROXY/],
    ['version 1 signature byte', altered(12, 0x11), /not PROXY/],
    ['UDP over IPv4', altered(13, 0x12), /address family/],
    ['UNSPEC', altered(13, 0x00), /address family/],
    ['a length too short for IPv4', (() => { const c = Buffer.from(good); c.writeUInt16BE(11, 14); return c })(), /length 11/],
    ['a length over the limit', (() => { const c = Buffer.from(good); c.writeUInt16BE(600, 14); return c })(), /length 600/],
    ['port 0', (() => { const c = Buffer.from(good); c.writeUInt16BE(0, 26); return c })(), /port 0/]
  ]
  for (const [name, bytes, reason] of cases) {
    const parsed = parseTunnelHeader(bytes)
    t.type(parsed, 'string', name)
    t.match(parsed, reason, name)
  }
})

async function pair (): Promise<{ client: Socket, server: Socket, close: () => void }> {
  const listener = createServer()
  listener.listen(0, '127.0.0.1')
  await once(listener, 'listening')
  const client = connect((listener.address() as AddressInfo).port, '127.0.0.1')
  const [server] = await once(listener, 'connection') as [Socket]
  return { client, server, close: () => { client.destroy(); server.destroy(); listener.close() } }
}

void t.test('tunnel header – read from a socket byte by byte; what follows reaches the next reader intact', async t => {
  const { client, server, close } = await pair()
  t.teardown(close)
  const header = tunnelHeader({ host: '198.18.0.2', port: 1 }, { host: '198.18.0.3', port: 7070 })
  const payload = Buffer.from('the app\'s first bytes, then more')
  const result = new Promise<{ port: number } | { problem: string }>(resolve => {
    readTunnelHeader(server, 2000, outcome => {
      resolve(outcome)
      const received: Buffer[] = []
      server.on('data', chunk => { received.push(chunk); if (Buffer.concat(received).length === payload.length) server.emit('all', Buffer.concat(received)) })
    })
  })
  const bytes = Buffer.concat([header, payload])
  for (let i = 0; i < header.length + 3; i++) {
    client.write(bytes.subarray(i, i + 1))
    await new Promise(resolve => setTimeout(resolve, 2))
  }
  const all = once(server, 'all')
  client.write(bytes.subarray(header.length + 3))
  t.same(await result, { port: 7070 })
  const [received] = await all as [Buffer]
  t.equal(received.toString(), payload.toString(), 'the bytes after the header, in order, none lost')
})

void t.test('tunnel header – a header and data in one write', async t => {
  const { client, server, close } = await pair()
  t.teardown(close)
  const done = new Promise<string>(resolve => {
    readTunnelHeader(server, 2000, outcome => {
      t.same(outcome, { port: 22 })
      server.once('data', chunk => { resolve((chunk as Buffer).toString()) })
    })
  })
  client.write(Buffer.concat([tunnelHeader({ host: '198.18.0.2', port: 1 }, { host: '198.18.0.3', port: 22 }), Buffer.from('SSH-2.0')]))
  t.equal(await done, 'SSH-2.0')
})

void t.test('tunnel header – no header within the deadline, or a close before it is complete, is a problem', async t => {
  const slow = await pair()
  t.teardown(slow.close)
  const started = Date.now()
  const timedOut = await new Promise<{ port: number } | { problem: string }>(resolve => { readTunnelHeader(slow.server, 150, resolve) })
  t.match(timedOut, { problem: /no complete tunnel header within 150 ms/ })
  t.ok(Date.now() - started >= 140, 'not before the deadline')
  const closing = await pair()
  t.teardown(closing.close)
  const ended = new Promise<{ port: number } | { problem: string }>(resolve => { readTunnelHeader(closing.server, 2000, resolve) })
  closing.client.end(SIGNATURE.subarray(0, 5))
  t.match(await ended, { problem: /closed before its tunnel header was complete/ })
})
