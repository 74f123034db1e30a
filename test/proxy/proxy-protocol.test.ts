import t from 'tap'
import type { Test } from 'tap'
import { once } from 'node:events'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import type { TLSSocket } from 'node:tls'
import { PP2_TYPE_SPIFFE_ID, proxyHeaderV2 } from '../../proxy/steps/proxy-protocol'
import { parseSpiffeId } from '../../spiffe/id'
import { TD, startMesh } from '../helpers/mesh'

// PROXY protocol v2 (haproxy's proxy-protocol.txt §2.2) in front of what an inbound TCP listener forwards: the app
// parses the header as any PROXY-aware server would, and finds the caller's address, the TLS version and the
// caller's verified SPIFFE ID; what follows the header is exactly what the client sent.

const SIGNATURE = Buffer.from('\r\n\r\n\0\r\nQUIT\n', 'latin1')

interface Tlv { type: number, value: Buffer }
interface ProxyHeader { versionCommand: number, family: number, length: number, addresses: Buffer, tlvs: Tlv[] }

function parseTlvs (buffer: Buffer): Tlv[] {
  const tlvs: Tlv[] = []
  for (let offset = 0; offset < buffer.length;) {
    if (offset + 3 > buffer.length) throw new Error(`a truncated TLV at ${offset}`)
    const length = buffer.readUInt16BE(offset + 1)
    if (offset + 3 + length > buffer.length) throw new Error(`TLV 0x${buffer[offset].toString(16)} overruns its block`)
    tlvs.push({ type: buffer[offset], value: buffer.subarray(offset + 3, offset + 3 + length) })
    offset += 3 + length
  }
  return tlvs
}

/** A v2 header at the start of `buffer`, and the bytes after it; throws when it is malformed. */
function parseHeader (buffer: Buffer): { header: ProxyHeader, rest: Buffer } {
  if (buffer.length < 16 || !buffer.subarray(0, 12).equals(SIGNATURE)) throw new Error('no PROXY protocol v2 signature')
  const length = buffer.readUInt16BE(14)
  if (buffer.length < 16 + length) throw new Error('a truncated header')
  const family = buffer[13]
  const addressLength = { 0x11: 12, 0x21: 36 }[family] ?? 0
  const addresses = buffer.subarray(16, 16 + addressLength)
  return { header: { versionCommand: buffer[12], family, length, addresses, tlvs: parseTlvs(buffer.subarray(16 + addressLength, 16 + length)) }, rest: buffer.subarray(16 + length) }
}

/** The PP2_TYPE_SSL value: client flags, verify result, and its sub-TLVs. */
function parseSsl (value: Buffer): { client: number, verify: number, subs: Tlv[] } {
  return { client: value[0], verify: value.readUInt32BE(1), subs: parseTlvs(value.subarray(5)) }
}

/** An IPv4 block as text: source, destination, ports. */
function ipv4Block (block: Buffer): { src: string, dst: string, srcPort: number, dstPort: number } {
  return { src: [...block.subarray(0, 4)].join('.'), dst: [...block.subarray(4, 8)].join('.'), srcPort: block.readUInt16BE(8), dstPort: block.readUInt16BE(10) }
}

/** Checks the TLVs every header carries: SSL (flags 0x07, verify 0, the version) then the SPIFFE ID. */
function checkTlvs (t: Test, tlvs: Tlv[], version: string, id: string): void {
  t.same(tlvs.map(tlv => tlv.type), [0x20, 0xe0], 'PP2_TYPE_SSL, then the SPIFFE ID in 0xE0')
  const ssl = parseSsl(tlvs[0].value)
  t.same({ client: ssl.client, verify: ssl.verify }, { client: 0x07, verify: 0 }, 'TLS, a client certificate on the connection and the session, verified')
  t.same(ssl.subs.map(sub => ({ type: sub.type, value: sub.value.toString() })), [{ type: 0x21, value: version }], 'PP2_SUBTYPE_SSL_VERSION')
  t.equal(tlvs[1].value.toString('utf8'), id)
}

/** What `socket` receives until it has `length` bytes, closes, or 3 s pass. */
async function readAtLeast (socket: TLSSocket, length: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  await new Promise<void>(resolve => {
    const timer = setTimeout(resolve, 3000)
    const done = (): void => {
      clearTimeout(timer)
      resolve()
    }
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      if (Buffer.concat(chunks).length >= length) done()
    }).once('close', done)
  })
  return Buffer.concat(chunks)
}

void t.test('sidecar proxy protocol – the app behind a proxyProtocol listener reads the caller\'s address, TLS version and SPIFFE ID, then the client\'s bytes', async t => {
  // The app: reads the header once it is whole, then echoes everything after it.
  const headers: ProxyHeader[] = []
  const app = createServer(socket => {
    let pending: Buffer | undefined = Buffer.alloc(0)
    socket.on('error', () => { socket.destroy() }).on('data', (chunk: Buffer) => {
      if (pending === undefined) {
        socket.write(chunk)
        return
      }
      pending = Buffer.concat([pending, chunk])
      if (pending.length < 16 || pending.length < 16 + pending.readUInt16BE(14)) return
      const { header, rest } = parseHeader(pending)
      headers.push(header)
      pending = undefined
      socket.write(rest)
    })
  })
  app.listen(0, '127.0.0.1')
  await once(app, 'listening')
  const mesh = await startMesh(`version: 1
rules:
  - name: client-to-server
    from: [${TD}/client]
    to: [${TD}/server]
    action: allow
`)
  t.teardown(async () => {
    await mesh.close()
    app.close()
  })
  for (const name of ['client', 'server']) await mesh.register(`${TD}/${name}`)
  const server = await mesh.startSidecar(`${TD}/server`, {}, { inbound: [{ listen: '127.0.0.1:0', target: `127.0.0.1:${(app.address() as AddressInfo).port}`, proxyProtocol: true }] })
  const svid = await mesh.svid(`${TD}/client`)

  // Two connections: each gets a header of its own, naming its own source port.
  for (const sent of [Buffer.from('hello\r\n\r\n\0 after the header'), Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0, 0xff])]) {
    const socket: TLSSocket = tlsConnect({ host: '127.0.0.1', port: server.port('inbound-1'), cert: svid.certPem, key: svid.keyPem, rejectUnauthorized: false })
    socket.on('error', () => { socket.destroy() })
    await once(socket, 'secureConnect')
    const client = { port: socket.localPort, version: socket.getProtocol() }
    socket.write(sent)
    t.same(await readAtLeast(socket, sent.length), sent, 'the app\'s data after the header is exactly what the client sent')
    socket.destroy()

    const header = headers.at(-1)
    if (header === undefined) throw new Error('the app read no header')
    t.equal(header.versionCommand, 0x21, 'version 2, PROXY')
    t.equal(header.family, 0x11, 'TCP over IPv4')
    t.equal(header.length, 12 + header.tlvs.reduce((sum, tlv) => sum + 3 + tlv.value.length, 0), 'the length covers the addresses and the TLVs')
    t.same(ipv4Block(header.addresses), { src: '127.0.0.1', dst: '127.0.0.1', srcPort: client.port, dstPort: server.port('inbound-1') }, 'the source is the client, the destination the listener')
    t.match(client.version, /^TLSv1\.[23]$/)
    checkTlvs(t, header.tlvs, client.version ?? '', `${TD}/client`)
  }
  t.equal(headers.length, 2)
})

/** A socket as proxyHeaderV2 reads it. */
function fakeSocket (remoteAddress: string, remotePort: number, localAddress: string, localPort: number, version = 'TLSv1.3'): TLSSocket {
  return { remoteAddress, remotePort, localAddress, localPort, getProtocol: () => version } as unknown as TLSSocket
}

void t.test('proxyHeaderV2 – IPv6 pairs carry 16-byte addresses, however the text abbreviates them', async t => {
  t.equal(PP2_TYPE_SPIFFE_ID, 0xe0, 'the exported type is the first custom one (PP2_TYPE_MIN_CUSTOM)')
  const peer = parseSpiffeId(`${TD}/ns/web`)
  const cases: Array<[string, string, string, string]> = [
    ['2001:db8::1', '20010db8000000000000000000000001', '::1', '00000000000000000000000000000001'],
    ['fe80:0:0:0:a:b:c:d', 'fe80000000000000000a000b000c000d', '2001:db8::', '20010db8000000000000000000000000'],
    ['2001:db8:1:2:3:4:5:6', '20010db8000100020003000400050006', 'fd00::ab:cd', 'fd0000000000000000000000' + '00ab00cd']
  ]
  for (const [src, srcHex, dst, dstHex] of cases) {
    const { header, rest } = parseHeader(proxyHeaderV2(fakeSocket(src, 40000, dst, 8443, 'TLSv1.2'), peer))
    t.equal(rest.length, 0, 'the header is all there is')
    t.equal(header.versionCommand, 0x21)
    t.equal(header.family, 0x21, `${src} → ${dst}: TCP over IPv6`)
    t.equal(header.addresses.length, 36)
    t.equal(header.addresses.subarray(0, 16).toString('hex'), srcHex)
    t.equal(header.addresses.subarray(16, 32).toString('hex'), dstHex)
    t.same([header.addresses.readUInt16BE(32), header.addresses.readUInt16BE(34)], [40000, 8443])
    checkTlvs(t, header.tlvs, 'TLSv1.2', `${TD}/ns/web`)
  }
})

void t.test('proxyHeaderV2 – IPv4-mapped IPv6 addresses go as IPv4; mixed families go as UNSPEC with no address block', async t => {
  const peer = parseSpiffeId(`${TD}/ns/web`)
  const mapped = parseHeader(proxyHeaderV2(fakeSocket('::ffff:10.1.2.3', 1234, '::ffff:127.0.0.1', 443), peer)).header
  t.equal(mapped.family, 0x11)
  t.same(ipv4Block(mapped.addresses), { src: '10.1.2.3', dst: '127.0.0.1', srcPort: 1234, dstPort: 443 })
  for (const [src, dst] of [['10.0.0.1', '::1'], ['2001:db8::1', '127.0.0.1']]) {
    const bytes = proxyHeaderV2(fakeSocket(src, 1234, dst, 443), peer)
    const { header, rest } = parseHeader(bytes)
    t.equal(header.family, 0x00, `${src} → ${dst}: UNSPEC`)
    t.equal(header.addresses.length, 0)
    t.equal(bytes[16], 0x20, 'the TLVs start right after the 16-byte header')
    t.equal(header.length, bytes.length - 16, 'the length counts the TLVs alone')
    t.equal(rest.length, 0)
    checkTlvs(t, header.tlvs, 'TLSv1.3', `${TD}/ns/web`)
  }
})

void t.test('proxyHeaderV2 – a link-local peer\'s scope (fe80::1%eth0, as Node reports it) is left out of the 16-byte address', async t => {
  const bytes = proxyHeaderV2(fakeSocket('fe80::1%eth0', 40000, 'fe80::2%eth0', 8443), parseSpiffeId(`${TD}/ns/web`))
  t.equal(bytes[13], 0x21, 'TCP over IPv6')
  const expected = `fe80${'0'.repeat(27)}1` + `fe80${'0'.repeat(27)}2` + '9c40' + '20fb'
  t.equal(bytes.subarray(16, 52).toString('hex'), expected, 'both addresses whole, then the ports')
  t.doesNotThrow(() => { checkTlvs(t, parseHeader(bytes).header.tlvs, 'TLSv1.3', `${TD}/ns/web`) }, 'the TLVs start after 36 address bytes')
})

void t.test('proxyHeaderV2 – a peer that came without TLS (node mode\'s same-device caller): its ID, and no TLS TLV', async t => {
  const plain = { remoteAddress: '172.30.0.2', remotePort: 40000, localAddress: '127.0.0.1', localPort: 8080 } as unknown as TLSSocket
  const { header, rest } = parseHeader(proxyHeaderV2(plain, parseSpiffeId(`${TD}/ns/web`)))
  t.equal(rest.length, 0)
  t.equal(header.family, 0x11, 'TCP over IPv4')
  t.same(header.tlvs, [{ type: PP2_TYPE_SPIFFE_ID, value: Buffer.from(`${TD}/ns/web`) }], 'the SPIFFE ID TLV alone')
})
