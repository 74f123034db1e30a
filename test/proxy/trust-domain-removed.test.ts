import t from 'tap'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect } from 'node:tls'
import type { TLSSocket } from 'node:tls'
import pino from 'pino'
import { createTestCa } from '../../certs-test'
import type { TestSvid } from '../../certs-test'
import { loadSidecarConfig } from '../../proxy/config'
import { Sidecar } from '../../proxy/sidecar'
import { echoServer } from '../helpers/mesh'
import { waitFor } from '../helpers/peers'
import { RawConnection, requestBytes, scriptedServer } from '../helpers/raw-http'
import { mtlsScriptedServer, openMtls } from '../helpers/raw-mtls'
import type { SvidPem } from '../helpers/raw-mtls'
import { startFederatingWorkloadApi } from './fixtures/federating-workload-api'
import type { FederatingWorkloadApi } from './fixtures/federating-workload-api'

// Federation ends while connections are open: when other.example's bundle leaves the sidecar's bundle set, the
// connections with its peers close (inbound and outbound, TCP and HTTP, pooled upstreams included), and only
// those; a rotation of its bundle closes nothing.

const OURS = 'ours.example'
const OTHER = 'other.example'
const THIRD = 'third.example'
const OK = 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok'

const dir = mkdtempSync(join(tmpdir(), 'chaperone-td-removed-'))
const otherCa = createTestCa(OTHER)
const thirdCa = createTestCa(THIRD)
const pem = (svid: TestSvid): SvidPem => ({ certPem: svid.chainPem, keyPem: svid.keyPem })
const partner = pem(otherCa.issueSvid(`spiffe://${OTHER}/partner`))
const logs: Array<Record<string, unknown>> = []
let api: FederatingWorkloadApi
let sidecar: Sidecar
let echo: Awaited<ReturnType<typeof echoServer>>
let app: Awaited<ReturnType<typeof scriptedServer>>
let otherServer: Awaited<ReturnType<typeof mtlsScriptedServer>>

t.before(async () => {
  api = await startFederatingWorkloadApi(dir, OURS, new Map([[OTHER, [otherCa.certDer]], [THIRD, [thirdCa.certDer]]]))
  echo = await echoServer()
  app = await scriptedServer(() => ({ write: OK }))
  otherServer = await mtlsScriptedServer(pem(otherCa.issueSvid(`spiffe://${OTHER}/server`)), () => ({ write: OK }))
  const policy = join(dir, 'policy.yaml')
  writeFileSync(policy, 'version: 1\nrules:\n  - { name: all, from: ["*"], to: ["*"], action: allow }\n')
  const logger = pino({ level: 'info' }, { write: (line: string) => { logs.push(JSON.parse(line) as Record<string, unknown>) } })
  sidecar = await Sidecar.start(loadSidecarConfig(undefined, {
    workloadApi: api.address,
    policy,
    admin: '127.0.0.1:0',
    inbound: [`127.0.0.1:0=127.0.0.1:${echo.port}`],
    inboundHttp: [`127.0.0.1:0=127.0.0.1:${app.port}`],
    outbound: [`127.0.0.1:0=127.0.0.1:${otherServer.port}`],
    outboundHttp: [`127.0.0.1:0=127.0.0.1:${otherServer.port}`]
  }), logger)
})
t.teardown(async () => {
  await sidecar.stop(0)
  for (const server of [echo.server, app.server, otherServer.server]) server.close()
  api.close()
  rmSync(dir, { recursive: true, force: true })
})

const port = (listener: string): number => Number(sidecar.addresses()[listener].split(':')[1])
const INBOUND_TCP = 'inbound-1'
const INBOUND_HTTP = 'inbound-2'
const OUTBOUND_TCP = 'outbound-1'
const OUTBOUND_HTTP = 'outbound-2'

/** Whether `text` comes back (the echo app behind the inbound TCP listener). */
async function echoes (connection: RawConnection, text: string): Promise<boolean> {
  connection.write(text)
  const back = await connection.take(buffer => buffer.length >= text.length ? { value: buffer.subarray(0, text.length).toString(), used: text.length } : undefined, 2000).catch(() => '')
  return back === text
}

/** The status of one more request on `connection` (0 when none comes). */
async function status (connection: RawConnection): Promise<number> {
  connection.write(requestBytes('GET', '/'))
  return (await connection.finalResponse(2000).catch(() => ({ status: 0 }))).status
}

async function waitUntil (check: () => boolean, ms = 2000): Promise<boolean> {
  return await waitFor([0], check, ms) !== undefined
}

/** Applies a Workload API update and waits for the sidecar to take it. */
async function update (): Promise<void> {
  const changed = once(sidecar.services.identity, 'change')
  api.send()
  await changed
}

async function closedCount (reason: string): Promise<Record<string, number>> {
  const { values } = await sidecar.services.metrics.closed.get()
  return Object.fromEntries(values.filter(v => v.labels.reason === reason).map(v => [String(v.labels.listener), v.value]))
}

const open: Record<string, RawConnection> = {}
let otherSession: Buffer | undefined

void t.test('trust domain removed – connections with peers of each trust domain are open', async t => {
  for (const [name, svid] of [['ours', pem(api.ca.issueSvid(`spiffe://${OURS}/client`))], ['other', partner], ['third', pem(thirdCa.issueSvid(`spiffe://${THIRD}/peer`))]] as const) {
    open[`${name}Tcp`] = await openMtls(port(INBOUND_TCP), svid)
    t.ok(await echoes(open[`${name}Tcp`], `hello from ${name}`), `inbound TCP from ${name}`)
    open[`${name}Http`] = await openMtls(port(INBOUND_HTTP), svid)
    t.equal(await status(open[`${name}Http`]), 200, `inbound HTTP from ${name}`)
  }
  otherSession = (open.otherTcp.socket as TLSSocket).getSession()
  open.outTcp = await RawConnection.open(port(OUTBOUND_TCP))
  t.equal(await status(open.outTcp), 200, 'outbound TCP to other.example')
  const client = await RawConnection.open(port(OUTBOUND_HTTP))
  t.equal(await status(client), 200, 'outbound HTTP to other.example')
  client.close()
  t.equal(otherServer.sockets.size, 2, 'the outbound TCP connection and the pooled HTTP one')
})

void t.test('trust domain removed – a rotation of a federated bundle, or of our SVID, closes nothing', async t => {
  api.federated.set(OTHER, [createTestCa(OTHER).certDer, otherCa.certDer])
  await update()
  api.svid = api.ca.issueSvid(`spiffe://${OURS}/app`)
  await update()
  for (const name of ['ours', 'other', 'third']) {
    t.ok(await echoes(open[`${name}Tcp`], 'still here'), `inbound TCP from ${name} still open`)
    t.equal(await status(open[`${name}Http`]), 200, `inbound HTTP from ${name} still open`)
  }
  t.equal(await status(open.outTcp), 200, 'outbound TCP still open')
  const client = await RawConnection.open(port(OUTBOUND_HTTP))
  t.equal(await status(client), 200, 'outbound HTTP still served')
  client.close()
  t.equal(otherServer.sockets.size, 2, 'on the pooled connection: no new one was made')
  t.same(logs.filter(line => line.event === 'trust_domain_removed'), [])
  t.same(await closedCount('trust_domain_removed'), {})
})

void t.test('trust domain removed – the connections with its peers close, in and out, TCP and HTTP, and only those', async t => {
  api.federated.delete(OTHER)
  await update()
  t.match(await waitFor(logs, line => line.event === 'trust_domain_removed'), { level: 40, trustDomain: OTHER, closedConnections: 4 })
  t.ok(await open.otherTcp.endsWithin(2000), 'inbound TCP from other.example closed')
  t.ok(await open.otherHttp.endsWithin(2000), 'inbound HTTP from other.example closed')
  t.ok(await open.outTcp.endsWithin(2000), 'outbound TCP to other.example closed')
  t.ok(await waitUntil(() => otherServer.sockets.size === 0), 'the pooled outbound HTTP connection closed')
  for (const name of ['ours', 'third']) {
    t.ok(await echoes(open[`${name}Tcp`], 'and still here'), `inbound TCP from ${name} still passes data`)
    t.equal(await status(open[`${name}Http`]), 200, `inbound HTTP from ${name} still served`)
  }
  t.same(await closedCount('trust_domain_removed'), { [INBOUND_TCP]: 1, [INBOUND_HTTP]: 1, [OUTBOUND_TCP]: 1, [OUTBOUND_HTTP]: 1 })
})

// Offering a session made before does not help: a bundle change gives the server new ticket keys (Node's
// setSecureContext), and a resumed session would be verified again against the bundles in force.
void t.test('trust domain removed – its peers are refused afterwards, with a TLS session from before too', async t => {
  const failures = logs.filter(line => line.event === 'handshake_failed').length
  const socket = connect({ host: '127.0.0.1', port: port(INBOUND_TCP), cert: partner.certPem, key: partner.keyPem, rejectUnauthorized: false, session: otherSession })
  const inbound = new RawConnection(socket)
  socket.once('secureConnect', () => { socket.write('let me in') })
  t.ok(await inbound.endsWithin(2000), 'inbound TCP from other.example closed')
  t.equal(inbound.buffer.length, 0, 'nothing came back from the app')
  const seen = otherServer.seen.length
  const outTcp = await RawConnection.open(port(OUTBOUND_TCP))
  t.equal(await status(outTcp), 0, 'outbound TCP to other.example refused')
  const client = await RawConnection.open(port(OUTBOUND_HTTP))
  t.equal(await status(client), 502, 'outbound HTTP to other.example refused')
  client.close()
  t.equal(otherServer.seen.length, seen, 'no request reached the server of other.example')
  const refused = logs.filter(line => line.event === 'handshake_failed').slice(failures)
  t.same(refused.map(line => [line.listener, line.reason]).sort(), [INBOUND_TCP, OUTBOUND_TCP, OUTBOUND_HTTP].sort().map(listener => [listener, 'ERR_X509_SVID_NO_BUNDLE']), 'refused for want of its bundle')
})
