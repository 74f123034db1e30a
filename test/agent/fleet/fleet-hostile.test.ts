/**
 * The fleet's TCP port against hostile devices, AttestAgent first (the one call anyone may make with work behind it):
 * a device answering its challenge many times gets one SVID recorded once; a device that stops answering is ended
 * at the attestation deadline; floods of streams and of params leave the port serving others with bounded work; a
 * device that cancels gives back what it held at once; oversized and malformed payloads are refused with a clear
 * status and a logged reason. Each with the port's own limits made small, and real TCP, TLS, gRPC and SQLite.
 */
import t from 'tap'
import { X509Certificate } from 'node:crypto'
import { constants } from 'node:http2'
import { status } from '@grpc/grpc-js'
import { AgentAttestationService } from '../../../agent/spire-api/grpc-proto'
import { FLEET_METHODS } from '../../../agent/fleet/fleet-authorization'
import { attestClient, attestOnce, deviceMessages, getBundle, openAttestStream, startFleetPort } from './fixtures/fleet-port'
import type { FleetPort } from './fixtures/fleet-port'
import { grpcFrame, openRawGrpc } from './fixtures/raw-grpc'
import { until } from '../../helpers/admin-http'

const attestRequest = AgentAttestationService().service.AttestAgent
const refusedInAll = (port: FleetPort): number => Object.values(port.fleet.status().attestationsRefused).reduce((sum, n) => sum + n, 0)
const refusals = (port: FleetPort, reason: string): Array<Record<string, unknown>> =>
  port.logs().filter(line => line.msg === 'fleet: attestation refused' && line.reason === reason)

void t.test('AttestAgent – a device answering its challenge many times gets one SVID, recorded once', async t => {
  const port = await startFleetPort(t)
  const messages = await deviceMessages(port.maker.issueBirthCert('SN-H-0001'))
  const stream = openAttestStream(attestClient(t, port))
  stream.call.write(messages.params)
  const challenge = await stream.challenge
  // The same answer again and again, then fresh valid answers (each with its own nonce), all before the result.
  const answer = messages.answer(challenge)
  for (let i = 0; i < 20; i++) stream.call.write(answer)
  for (let i = 0; i < 20; i++) stream.call.write(messages.answer(challenge))
  stream.call.end()
  const end = await stream.ended
  t.equal(end.code, status.OK, 'the attestation completed')
  const results = stream.responses.filter(r => r.result?.svid !== undefined && r.result.svid !== null)
  t.equal(results.length, 1, 'one result was sent')
  t.equal(port.attested(), 1, 'one attestation was recorded')
  const issued = new X509Certificate(results[0].result?.svid?.cert_chain[0] ?? Buffer.alloc(0))
  const agents = port.store.agents.list()
  t.equal(agents.length, 1, 'one agent')
  t.equal(agents[0].serialNumber, BigInt(`0x${issued.serialNumber}`).toString(), 'the agent\'s recorded SVID is the one the device got')
  t.equal(port.logs().filter(line => line.msg === 'fleet: agent attestation completed').length, 1, 'one completion logged')
  t.same(port.fleet.status().attestationsRefused, {}, 'nothing refused')
  t.same(port.fleet.status().callsRefused, {}, 'no call taken for cancelled')
})

void t.test('AttestAgent – a device that sends its params and never answers is ended at the deadline', async t => {
  const port = await startFleetPort(t, { attestTimeoutMs: 400 })
  const messages = await deviceMessages(port.maker.issueBirthCert('SN-H-0002'))
  const client = attestClient(t, port)
  const stalled = openAttestStream(client)
  const started = Date.now()
  stalled.call.write(messages.params)
  await stalled.challenge
  const silent = openAttestStream(client)
  const [end, silentEnd] = await Promise.all([stalled.ended, silent.ended])
  const took = Date.now() - started
  t.match(end, { code: status.DEADLINE_EXCEEDED, details: 'attestation did not complete in time' }, 'ended DEADLINE_EXCEEDED in the handler\'s words')
  t.ok(took >= 350 && took < 10_000, `at the handler's deadline (${took} ms), long before the device's own (20 s)`)
  t.equal(silentEnd.code, status.DEADLINE_EXCEEDED, 'a stream that never sends params too')
  t.equal(port.fleet.status().attestationsRefused.timeout, 2, 'counted as timeout')
  t.match(refusals(port, 'timeout'), [{ code: 'DEADLINE_EXCEEDED', address: '127.0.0.1' }], 'logged with the reason and address (once per address and reason)')
  t.equal(port.attested(), 0, 'nothing recorded')
})

void t.test('AttestAgent – params sent again and again on one stream: one challenge, then refused, nothing recorded', async t => {
  const port = await startFleetPort(t)
  const messages = await deviceMessages(port.maker.issueBirthCert('SN-H-0003'))
  const stream = openAttestStream(attestClient(t, port))
  for (let i = 0; i < 500; i++) stream.call.write(messages.params)
  const end = await stream.ended
  t.equal(end.code, status.INVALID_ARGUMENT, 'the second params is no challenge response')
  t.match(end.details, /unable to unmarshal challenge response/, 'in SPIRE\'s words')
  t.equal(stream.responses.filter(r => r.challenge !== undefined && r.challenge.length > 0).length, 1, 'one challenge was sent')
  t.equal(port.attested(), 0, 'nothing recorded')
  t.match(await getBundle(port), { trust_domain: 'port.example' }, 'the port still answers')
})

void t.test('AttestAgent – a flood of streams from one address is capped; others attest meanwhile', async t => {
  const port = await startFleetPort(t, { attestTimeoutMs: 8_000, limits: { maxConnectionsPerAddress: 8, maxConnections: 64 } })
  const params = Buffer.from(attestRequest.requestSerialize((await deviceMessages(port.maker.issueBirthCert('SN-H-0004'))).params))
  const heapBefore = process.memoryUsage().heapUsed
  const attacker = await openRawGrpc(port.port, { localAddress: '127.0.0.2' })
  t.teardown(() => { attacker.close() })
  t.equal(attacker.session.remoteSettings.maxConcurrentStreams, 100, 'the port caps concurrent streams per connection')
  const flood = Array.from({ length: 2000 }, () => { const call = attacker.call(FLEET_METHODS.attestAgent); call.send(params); return call })
  const beyond = await Promise.all(flood.slice(8).map(async call => await call.ended))
  t.equal(flood.slice(0, 8).filter(call => call.received.length === 1).length, 8, 'the address\'s share got its challenges and is held')
  t.equal(flood.slice(8).filter(call => call.received.length > 0).length, 0, 'no stream beyond it got a challenge')
  // Beyond the share, the handler refuses at once; HTTP/2 itself resets streams opened faster than they are ended.
  const busy = beyond.filter(end => end.status === status.RESOURCE_EXHAUSTED)
  t.ok(busy.length >= 100 && beyond.every(end => end.status === status.RESOURCE_EXHAUSTED || end.rstCode === constants.NGHTTP2_ENHANCE_YOUR_CALM),
    `each refused: ${busy.length} RESOURCE_EXHAUSTED, the rest reset ENHANCE_YOUR_CALM`)
  t.equal(busy[0].details, 'too many attestations in progress from this address', 'saying why')
  t.equal(port.fleet.status().attestationsRefused.busy, busy.length, 'counted as busy')
  t.match(refusals(port, 'busy'), [{ address: '127.0.0.2', code: 'RESOURCE_EXHAUSTED' }], 'logged (once per address and reason)')

  const device = await attestOnce(port, port.maker.issueBirthCert('SN-H-0005'))
  t.equal(device.status.code, status.OK, 'a device from another address attests while the flood is held')
  t.match(await getBundle(port), { trust_domain: 'port.example' }, 'GetBundle answers')
  t.equal(port.attested(), 1, 'only that device is recorded')
  const grown = process.memoryUsage().heapUsed - heapBefore
  t.ok(grown < 200 * 1024 * 1024, `the heap grew by ${Math.round(grown / 1024 / 1024)} MiB for 2000 streams`)
})

void t.test('AttestAgent – a device that cancels gives its share back at once, and is not logged as a timeout', async t => {
  const port = await startFleetPort(t, { attestTimeoutMs: 20_000, limits: { maxConnectionsPerAddress: 4 } })
  const messages = await deviceMessages(port.maker.issueBirthCert('SN-H-0006'))
  const client = attestClient(t, port)
  for (let round = 0; round < 5; round++) {
    const streams = Array.from({ length: 4 }, () => openAttestStream(client))
    for (const stream of streams) stream.call.write(messages.params)
    await Promise.all(streams.map(async stream => await stream.challenge))
    for (const stream of streams) stream.call.cancel()
    await until('the port to see the cancels', () => refusedInAll(port) === 4 * (round + 1), 5_000)
  }
  const device = await attestOnce(port, port.maker.issueBirthCert('SN-H-0007'))
  t.equal(device.status.code, status.OK, 'after 20 cancelled attestations, well within their deadline, another from the same address is let in')
  // grpc-js reads a reset as the end of the stream, then the cancel: SPIRE's words for a stream that ended.
  t.match(refusals(port, 'malformed'), [{ code: 'INVALID_ARGUMENT', message: 'failed to receive request from stream: the stream ended' }], 'each cancel refused as a stream that ended')
  t.equal(port.fleet.status().attestationsRefused.timeout, undefined, 'none was left to time out')
  t.equal(port.attested(), 1, 'only the completed one is recorded')
})

void t.test('AttestAgent – oversized and malformed payloads: a clear status, a logged reason, no crash', async t => {
  const port = await startFleetPort(t, { attestTimeoutMs: 1_000 })
  const birth = port.maker.issueBirthCert('SN-H-0008')
  const messages = await deviceMessages(birth)
  const session = await openRawGrpc(port.port)
  t.teardown(() => { session.close() })
  const attest = async (request: object): Promise<{ status?: number, details?: string }> => {
    const call = session.call(FLEET_METHODS.attestAgent)
    call.send(Buffer.from(attestRequest.requestSerialize(request)))
    return await call.ended
  }
  const params = (payload: Buffer, csr = Buffer.from('csr')): object => ({ params: { data: { type: 'x509pop', payload }, params: { csr } } })

  const huge = session.call(FLEET_METHODS.attestAgent)
  huge.stream.write(grpcFrame(Buffer.alloc(1024), 64 * 1024 * 1024))
  t.match(await huge.ended, { status: status.RESOURCE_EXHAUSTED, details: /larger than max/ }, 'a message announcing 64 MiB: RESOURCE_EXHAUSTED')
  t.match(await attest(params(Buffer.alloc(5 * 1024 * 1024, 0x41))), { status: status.RESOURCE_EXHAUSTED }, 'a 5 MiB payload: RESOURCE_EXHAUSTED')
  await until('the port to see the calls gRPC ended', () => port.fleet.status().callsRefused.cancelled === 2, 5_000)
  t.match(port.logs().filter(line => line.msg === 'fleet: call refused' && line.reason === 'cancelled'),
    [{ method: FLEET_METHODS.attestAgent, message: /a message over gRPC's 4 MiB limit refused \(RESOURCE_EXHAUSTED\)/ }], 'logged with the reason, at once (not as a timeout later)')

  t.match(await attest(params(Buffer.alloc(3 * 1024 * 1024, 0x7b))), { status: status.INVALID_ARGUMENT, details: /^failed to unmarshal data: / }, '3 MiB of garbage JSON')
  t.match(await attest(params(Buffer.from('['.repeat(500_000) + ']'.repeat(500_000)))), { status: status.INVALID_ARGUMENT, details: /failed to unmarshal data/ }, 'JSON nested 500 000 deep')
  const nested = nestedSequences(200_000)
  t.match(await attest(params(Buffer.from(JSON.stringify({ certificates: [nested.toString('base64')] })))), { status: status.INVALID_ARGUMENT, details: /unable to parse leaf certificate/ }, 'a "certificate" of SEQUENCEs nested 200 000 deep')
  t.match(await attest(params(Buffer.from(JSON.stringify({ certificates: Array.from({ length: 2_000 }, () => birth.chain[0].toString('base64')) })))),
    { status: status.INVALID_ARGUMENT, details: 'too many intermediate certificates' }, '2 000 certificates')
  const garbageCsr = openAttestStream(attestClient(t, port))
  garbageCsr.call.write({ params: { ...messages.params.params, params: { csr: Buffer.alloc(3 * 1024 * 1024, 0x30) } } })
  garbageCsr.call.write(messages.answer(await garbageCsr.challenge))
  t.match(await garbageCsr.ended, { code: status.INVALID_ARGUMENT, details: /^failed to parse CSR: / }, 'a valid birth certificate with a 3 MiB garbage CSR')
  t.match(refusals(port, 'csr'), [{ code: 'INVALID_ARGUMENT' }], 'logged as csr')

  const bundle = session.call(FLEET_METHODS.getBundle)
  bundle.send(Buffer.alloc(5 * 1024 * 1024))
  t.match(await bundle.ended, { status: status.RESOURCE_EXHAUSTED }, 'GetBundle with a 5 MiB request: RESOURCE_EXHAUSTED')
  await until('the port to count it', () => port.fleet.status().callsRefused.cancelled === 3, 5_000)
  t.match(await getBundle(port), { trust_domain: 'port.example' }, 'the port still answers')
  t.equal(port.attested(), 0, 'nothing recorded')
  t.equal(port.fleet.status().attestationsRefused.timeout, undefined, 'no call was left to time out')
  t.equal(port.fleet.status().callsRefused.cancelled, 3, 'and the calls answered, however they were refused, are not counted as cancelled')
})

/** DER: `depth` SEQUENCEs, each holding the next, the innermost empty. */
function nestedSequences (depth: number): Buffer {
  const parts: Buffer[] = []
  let length = 0
  for (let i = 0; i < depth; i++) {
    parts.push(derHeader(length))
    length += parts[parts.length - 1].length
  }
  return Buffer.concat(parts.reverse())
}

function derHeader (length: number): Buffer {
  if (length < 0x80) return Buffer.from([0x30, length])
  const bytes: number[] = []
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256)
  return Buffer.from([0x30, 0x80 | bytes.length, ...bytes])
}
