import t from 'tap'
import type { Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import { createTestCa, toPem } from '../../certs-test'
import { writeCertMatrix } from '../../certs-test/generate'
import { freePort } from '../../bench/proxy/processes'
import { OPENSSL_MISSING } from '../helpers/openssl'
import { TD, echoServer, startMesh } from '../helpers/mesh'
import type { Mesh, RunningSidecar } from '../helpers/mesh'
import { runProcess } from '../helpers/cli'
import { policy } from '../helpers/policy-text'
import { runUntil, tcpExchange, tlsExchange, waitFor, writeSvidFiles } from '../helpers/peers'

// Refusals at a sidecar's inbound listeners, with the real agent: every client below is refused for a reason the
// log names (event handshake_failed, reason = the error code), and the sidecar goes on serving good clients.
//
// The log is rate-limited per listener, remote address and reason (one line per 10 s), so each refused client
// below connects from its own loopback source address (127.0.0.N): its line is then never suppressed, and it is
// told apart from the others by `remote`. openssl s_client cannot choose its source address; its refusals come
// from 127.0.0.1, each for a different reason.

const POLICY = policy({ name: 'client-to-server', from: [`${TD}/client`], to: [`${TD}/server`, `${TD}/other`], action: 'allow' })
const SECRET = 'knock knock\n'

let mesh: Mesh
let server: RunningSidecar
let app: Awaited<ReturnType<typeof echoServer>>
let client: { cert: string, key: string }
let clientPem: { certPem: string, keyPem: string }
let nextSource = 10
/** A loopback source address no other connection of this file used. */
const source = (): string => `127.0.0.${nextSource++}`

t.before(async () => {
  mesh = await startMesh(POLICY)
  for (const name of ['client', 'server', 'other']) await mesh.register(`${TD}/${name}`)
  app = await echoServer()
  server = await mesh.startSidecar(`${TD}/server`, { inbound: [`127.0.0.1:0=127.0.0.1:${app.port}`], inboundHttp: [`127.0.0.1:0=127.0.0.1:${app.port}`] })
  clientPem = await mesh.svid(`${TD}/client`)
  client = writeSvidFiles(mesh.dir, 'client', clientPem)
})
t.teardown(async () => {
  app.server.close()
  await mesh.close()
})

/**
 * The handshake_failed line of `listener` for a connection from `remote`, logged after the first `since` lines
 * (waiting a moment: a refusal may be logged just after the client saw the close).
 */
async function refusal (sidecar: RunningSidecar, remote: string, listener = 'inbound-1', since = 0): Promise<Record<string, unknown> | undefined> {
  return await waitFor(sidecar.logs, line => line.event === 'handshake_failed' && line.remote === remote && line.listener === listener && sidecar.logs.indexOf(line) >= since)
}

/** openssl s_client to the TCP listener with `args`, sending SECRET and waiting for its echo. */
async function sClient (args: string[]): Promise<Awaited<ReturnType<typeof runUntil>>> {
  return await runUntil('openssl', ['s_client', '-connect', `127.0.0.1:${server.port('inbound-1')}`, '-quiet', ...args], SECRET, out => out.includes(SECRET))
}

/** The first flight of a TLS client presenting the client SVID: its ClientHello. */
async function clientHello (): Promise<Buffer> {
  const catcher = createServer(socket => { socket.once('data', (chunk: Buffer) => { socket.destroy(); catcher.emit('hello', chunk) }) })
  catcher.listen(0, '127.0.0.1')
  await once(catcher, 'listening')
  const tls = tlsConnect({ port: (catcher.address() as AddressInfo).port, host: '127.0.0.1', rejectUnauthorized: false, cert: clientPem.certPem, key: clientPem.keyPem })
  tls.on('error', () => { tls.destroy() })
  const [hello] = await once(catcher, 'hello') as [Buffer]
  catcher.close()
  return hello
}

/** The valid client SVID gets an echo through the TCP listener: the sidecar still serves. */
async function stillServes (t: Test): Promise<void> {
  const after = await tlsExchange({ port: server.port('inbound-1'), cert: clientPem.certPem, key: clientPem.keyPem, localAddress: source() }, SECRET)
  t.equal(after.received, SECRET, 'a valid client still gets through afterwards')
}

void t.test('refusals – openssl s_client with a valid SVID of an allowed ID gets through to the app; without a certificate it is refused', { skip: OPENSSL_MISSING }, async t => {
  const valid = await sClient(['-cert', client.cert, '-key', client.key])
  t.equal(valid.stdout, SECRET, `the echo comes back through the sidecar (${valid.stderr.trim()})`)
  t.notOk(valid.timedOut)
  t.same(server.logs.filter(line => line.event === 'handshake_failed' || line.event === 'denied'), [], 'nothing refused')

  const anonymous = await sClient([])
  t.equal(anonymous.stdout, '', 'nothing reaches the app or comes back')
  t.notOk(anonymous.timedOut, 's_client ends: the sidecar closed the connection')
  t.match(await refusal(server, '127.0.0.1'), { level: 40, listener: 'inbound-1', direction: 'inbound', reason: 'ERR_X509_SVID_MISSING', err: /no certificate/ })
})

void t.test('refusals – a certificate of another trust domain is refused, whatever ID it claims', async t => {
  const other = createTestCa('other.example')
  // Its own ID: the sidecar has no bundle for other.example.
  const foreign = other.issueSvid('spiffe://other.example/client')
  const foreignFrom = source()
  const refused = await tlsExchange({ port: server.port('inbound-1'), cert: foreign.chainPem, key: foreign.keyPem, localAddress: foreignFrom }, SECRET)
  t.equal(refused.received, '', 'its own ID: nothing comes back')
  t.match(await refusal(server, foreignFrom), { reason: 'ERR_X509_SVID_NO_BUNDLE', err: /other\.example/ }, 'its own ID: no bundle for its trust domain')
  // One of our IDs, signed by the other CA: an impostor, not in plant.example's bundle.
  const impostor = other.issueSvid(`${TD}/client`)
  const impostorFrom = source()
  const forged = await tlsExchange({ port: server.port('inbound-1'), cert: impostor.chainPem, key: impostor.keyPem, localAddress: impostorFrom }, SECRET)
  t.equal(forged.received, '', 'one of our IDs: nothing comes back')
  t.match(await refusal(server, impostorFrom), { reason: 'ERR_X509_SVID_UNTRUSTED', err: /other\.example Root CA/ }, 'one of our IDs: its CA is not plant.example\'s')
  // The HTTP listener refuses the same way (curl: a real client; -k as the server is not under test here).
  const files = writeSvidFiles(mesh.dir, 'foreign', { certPem: foreign.chainPem, keyPem: foreign.keyPem })
  const curl = await runProcess('curl', ['-sS', '-k', '--cert', files.cert, '--key', files.key, '-o', '-', '-w', '%{http_code}', `https://127.0.0.1:${server.port('inbound-2')}/`])
  t.equal(curl.stdout, '000', `no HTTP response at all (${curl.stderr.trim()})`)
  t.match(await refusal(server, '127.0.0.1', 'inbound-2'), { listener: 'inbound-2', reason: 'ERR_X509_SVID_NO_BUNDLE' })
  await stillServes(t)
})

void t.test('refusals – every broken fixture of the certificate matrix, presented as a client certificate, is refused with an SVID error logged', async t => {
  // The matrix is built for its own trust domains (td-a.test, td-b.test), and the sidecar trusts only the agent's
  // bundle (plant.example). So a defect of the leaf itself (its ID, its extensions) is found first and logged with
  // the matrix's code, while a defect only the td-a.test bundle would reveal (validity, chain) never gets that far:
  // the leaf names a trust domain the sidecar has no bundle for (ERR_X509_SVID_NO_BUNDLE). Either way: refused,
  // nothing reaches the app, and the log names an X509-SVID problem.
  const dir = join(mesh.dir, 'matrix')
  const fixtures = writeCertMatrix(dir)
  const broken = fixtures.flatMap(f => 'code' in f.expect ? [{ ...f, code: f.expect.code }] : [])
  t.ok(broken.length >= 25, `${broken.length} broken fixtures`)
  const codes: string[] = []
  for (const f of broken) {
    const from = source()
    const result = await tlsExchange({ port: server.port('inbound-1'), cert: toPem(f.chain), key: f.key.export({ type: 'pkcs8', format: 'pem' }), localAddress: from }, SECRET)
    t.equal(result.received, '', `${f.name}: nothing comes back`)
    const line = await refusal(server, from)
    t.match(line, { event: 'handshake_failed', listener: 'inbound-1', reason: /^ERR_X509_SVID_/ }, `${f.name}: refused, logged`)
    t.ok([f.code, 'ERR_X509_SVID_NO_BUNDLE'].includes(String(line?.reason)), `${f.name}: ${String(line?.reason)} is ${f.code} or NO_BUNDLE`)
    codes.push(`${f.name}=${String(line?.reason)}`)
  }
  t.comment(codes.join(' '))
  // The valid ones are valid SVIDs of td-a.test and td-b.test, which this sidecar does not trust.
  for (const f of fixtures.filter(f => 'id' in f.expect)) {
    const from = source()
    const result = await tlsExchange({ port: server.port('inbound-1'), cert: toPem(f.chain), key: f.key.export({ type: 'pkcs8', format: 'pem' }), localAddress: from }, SECRET)
    t.equal(result.received, '', `${f.name}: nothing comes back`)
    t.match(await refusal(server, from), { reason: 'ERR_X509_SVID_NO_BUNDLE' }, `${f.name}: valid, but of a trust domain the sidecar has no bundle for`)
  }
  // Two through openssl s_client, from the fixture files (its refusals all come from 127.0.0.1: two reasons).
  if (OPENSSL_MISSING === undefined) {
    for (const name of ['no-uri-san', 'leaf-is-ca']) {
      const since = server.logs.length
      const run = await sClient(['-cert', join(dir, name, 'chain.pem'), '-key', join(dir, name, 'key.pem')])
      t.equal(run.stdout, '', `${name} with openssl: nothing comes back`)
      t.notOk(run.timedOut, `${name} with openssl: the sidecar closed the connection`)
      t.match(await refusal(server, '127.0.0.1', 'inbound-1', since), { reason: broken.find(f => f.name === name)?.code }, `${name} with openssl: logged`)
    }
  }
  await stillServes(t)
})

void t.test('refusals – a malformed handshake and a peer that resets mid-handshake are refused and logged; the sidecar keeps serving', async t => {
  const port = server.port('inbound-1')
  const garbageFrom = source()
  // Not TLS at all: bytes no record layer accepts (a first byte that is no TLS record type).
  const garbage = await tcpExchange(port, Buffer.concat([Buffer.from([0x42]), randomBytes(511)]), { localAddress: garbageFrom })
  t.notOk(garbage.timedOut, 'random bytes: the sidecar hangs up')
  t.match(await refusal(server, garbageFrom), { listener: 'inbound-1', reason: /^ERR_SSL_/ }, 'random bytes: logged with OpenSSL\'s reason')
  const httpFrom = source()
  const plain = await tcpExchange(port, 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', { localAddress: httpFrom })
  t.notOk(plain.timedOut, 'plain HTTP: the sidecar hangs up')
  t.notMatch(plain.received, 'GET /', 'plain HTTP: nothing reaches the echo app')
  t.match(await refusal(server, httpFrom), { reason: 'ERR_SSL_HTTP_REQUEST' }, 'plain HTTP to the TLS port: logged as such')

  // A real ClientHello (a node client's, caught by a throwaway server), then a TCP reset as soon as the sidecar
  // answers it: the handshake is left half done.
  const hello = await clientHello()
  const resetFrom = source()
  const since = server.logs.length
  const raw = connect({ port, host: '127.0.0.1', localAddress: resetFrom }, () => { raw.write(hello) })
  raw.once('data', () => { raw.resetAndDestroy() })
  await once(raw, 'close')
  const reset = await waitFor(server.logs, line => line.event === 'handshake_failed' && line.reason === 'ECONNRESET' && server.logs.indexOf(line) >= since)
  t.match(reset, { listener: 'inbound-1', direction: 'inbound', err: /ECONNRESET/ }, 'reset mid-handshake: logged')
  t.equal(reset?.remote, resetFrom, 'reset mid-handshake: the line names the peer')
  await stillServes(t)
})

void t.test('refusals – an outbound listener expecting spiffe://plant.example/server refuses a server that is .../other; the app gets nothing', async t => {
  const other = await mesh.startSidecar(`${TD}/other`, { inbound: [`127.0.0.1:0=127.0.0.1:${app.port}`] })
  const target = `127.0.0.1:${other.port('inbound-1')}`
  const caller = await mesh.startSidecar(`${TD}/client`, { outbound: [`127.0.0.1:0=${target}@${TD}/server`] })
  const result = await tcpExchange(caller.port('outbound-1'), SECRET)
  t.equal(result.received, '', 'no data comes back to the app')
  t.notOk(result.timedOut, 'the app\'s connection is closed')
  t.match(await waitFor(caller.logs, line => line.event === 'handshake_failed'), {
    level: 40, listener: 'outbound-1', direction: 'outbound', remote: target, reason: 'ERR_X509_SVID_ID_MISMATCH', err: `peer is ${TD}/other`
  })
  t.match(caller.logs.find(line => line.event === 'handshake_failed')?.err, `expected ${TD}/server`, 'the line says which ID was expected')
  t.same(caller.logs.filter(line => line.event === 'denied'), [], 'refused for the identity, before any policy decision')
})

void t.test('refusals – a TLS 1.3 server that refuses the outbound sidecar\'s certificate after the handshake: logged as a handshake failure with the alert', { skip: OPENSSL_MISSING }, async t => {
  // openssl s_server is .../server by its SVID, so the sidecar accepts it; it trusts only another CA for clients, so
  // it refuses ours with an alert, which in TLS 1.3 reaches the sidecar after its side of the handshake completed.
  const files = writeSvidFiles(mesh.dir, 'picky-server', await mesh.svid(`${TD}/server`))
  const otherCa = join(mesh.dir, 'other-ca.pem')
  writeFileSync(otherCa, createTestCa('other.example').certPem)
  const port = await freePort()
  const picky = spawn('openssl', ['s_server', '-tls1_3', '-accept', `127.0.0.1:${port}`, '-cert', files.cert, '-key', files.key, '-CAfile', otherCa, '-Verify', '1', '-verify_return_error'], { stdio: ['pipe', 'pipe', 'ignore'] })
  t.teardown(() => { picky.kill() })
  await new Promise(resolve => { picky.stdout.on('data', (chunk: Buffer) => { if (chunk.includes('ACCEPT')) resolve(undefined) }) })
  const target = `127.0.0.1:${port}`
  const caller = await mesh.startSidecar(`${TD}/client`, { outbound: [`127.0.0.1:0=${target}@${TD}/server`] })
  const result = await tcpExchange(caller.port('outbound-1'), SECRET)
  t.equal(result.received, '', 'no data comes back to the app')
  t.match(await waitFor(caller.logs, line => line.event === 'handshake_failed'), {
    level: 40, listener: 'outbound-1', direction: 'outbound', remote: target, reason: /^ERR_SSL_.*_ALERT_/, err: /the server refused our certificate/
  })
})
