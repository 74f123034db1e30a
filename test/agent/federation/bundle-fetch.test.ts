/**
 * Fetching a federated trust domain's bundle, over real sockets and TLS: from a real bundle endpoint (https_spiffe,
 * the endpoint's SVID verified against its own trust domain's bundle and its ID checked instead of the host name),
 * from a Web PKI server (https_web, with a test CA), and from hostile servers, each failure with its reason.
 */
import t from 'tap'
import type { Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer as createHttpsServer } from 'node:https'
import type { RequestListener } from 'node:http'
import { createServer as createNetServer } from 'node:net'
import type { AddressInfo, Server as NetServer, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer as createTlsServer } from 'node:tls'
import pino from 'pino'
import { AgentCa } from '../../../agent/ca'
import { BundleEndpointServer } from '../../../agent/federation/bundle-endpoint-server'
import { fetchBundle } from '../../../agent/federation/bundle-fetch'
import type { BundleFetchOptions, FetchTarget } from '../../../agent/federation/bundle-fetch'
import { BundleFetchError } from '../../../agent/federation/fetch-errors'
import { createTestCa } from '../../../certs-test'
import type { TestSvid } from '../../../certs-test'
import { parseSpiffeId, parseTrustDomain } from '../../../spiffe/id'
import type { TrustDomain } from '../../../spiffe/id'
import { SpiffeBundle } from '../../../spiffe/spiffe-bundle'
import { X509Bundle } from '../../../spiffe/x509-bundle'

const A = parseTrustDomain('plant-a.example')
const B = parseTrustDomain('plant-b.example')
const quiet = pino({ level: 'silent' })

async function openCa (t: Test, td: TrustDomain): Promise<AgentCa> {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-bundle-fetch-'))
  const ca = await AgentCa.open({ trustDomain: td, dataDir: dir, logger: quiet })
  t.teardown(() => { ca.close(); rmSync(dir, { recursive: true, force: true }) })
  return ca
}

/** A real bundle endpoint (https_spiffe: the CA's spiffe://<td>/spire/server SVID) on 127.0.0.1; its port. */
async function startEndpoint (t: Test, ca: AgentCa): Promise<number> {
  const endpoint = await BundleEndpointServer.start({ host: '127.0.0.1', port: 0, profile: { kind: 'https_spiffe' }, ca, store: { ownBundle: bundle => bundle }, logger: quiet })
  t.teardown(async () => { await endpoint.stop() })
  return Number(endpoint.address.split(':')[1])
}

function spiffeTarget (td: TrustDomain, url: string, endpointId: string): FetchTarget {
  return { trustDomain: td, bundleEndpointUrl: url, profile: { kind: 'https_spiffe', endpointSpiffeId: parseSpiffeId(endpointId) } }
}

/** A Web PKI the tests control: a root and server certificates for names (and, if asked, a SPIFFE URI too). */
const webRoot = createTestCa('web-pki.example')
function webCertificate (dnsNames: string[], uris: string[] = []): TestSvid {
  return webRoot.issueSvid(uris[0] ?? 'https://unused.example', { dnsNames, override: { uris } })
}
const localhostCert = webCertificate(['localhost'])
const webOptions: BundleFetchOptions = { bundleFor: () => undefined, webCa: webRoot.certPem }
const webTarget = (url: string): FetchTarget => ({ trustDomain: B, bundleEndpointUrl: url, profile: { kind: 'https_web' } })
/** B's bundle as a test server serves it. */
const bRoot = createTestCa(B.name)
const servedB = new SpiffeBundle(B, { x509: new X509Bundle(B, [bRoot.certDer]), sequence: 7, refreshHintSeconds: 60 }).marshal()

async function listen (t: Test, server: NetServer): Promise<number> {
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const sockets = new Set<Socket>()
  server.on('connection', (socket: Socket) => { sockets.add(socket); socket.on('error', () => {}); socket.once('close', () => sockets.delete(socket)) })
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise(resolve => server.close(resolve))
  })
  return (server.address() as AddressInfo).port
}

/** An https server with `cert` on 127.0.0.1; the server names (SNI) and requests it saw. */
async function startHttps (t: Test, handler: RequestListener, cert = localhostCert): Promise<{ port: number, sni: Array<string | false | null>, requests: Array<{ method?: string, url?: string, accept?: string }> }> {
  const sni: Array<string | false | null> = []
  const requests: Array<{ method?: string, url?: string, accept?: string }> = []
  const server = createHttpsServer({ key: cert.keyPem, cert: cert.chainPem }, (req, res) => {
    requests.push({ method: req.method, url: req.url, accept: req.headers.accept })
    res.on('error', () => {})
    handler(req, res)
  })
  server.on('secureConnection', socket => { sni.push(socket.servername) })
  return { port: await listen(t, server), sni, requests }
}

async function refused (t: Test, promise: Promise<unknown>, reason: string, message?: RegExp): Promise<void> {
  const err = await promise.then(() => undefined, (err: unknown) => err)
  t.ok(err instanceof BundleFetchError, `a BundleFetchError (${String(err)})`)
  t.match(err, { code: 'ERR_BUNDLE_FETCH_FAILED', reason, ...(message === undefined ? {} : { message }) }, `refused: ${reason}`)
}

void t.test('bundle fetch – https_spiffe: the bundle from a real endpoint, its SVID verified by SPIFFE ID, not by host name', async t => {
  const ca = await openCa(t, A)
  const port = await startEndpoint(t, ca)
  const asked: string[] = []
  // "localhost" is in no SAN of the endpoint's SVID: the SPIFFE ID check replaces the host name check.
  const fetched = await fetchBundle(spiffeTarget(A, `https://localhost:${port}/`, `spiffe://${A.name}/spire/server`), {
    bundleFor: td => { asked.push(td.name); return td.equals(A) ? ca.bundle() : undefined }
  })
  t.ok(fetched.trustDomain.equals(A))
  t.same(fetched.x509.authorities.map(c => c.fingerprint256), ca.bundle().x509.authorities.map(c => c.fingerprint256), 'the X.509 authorities')
  t.same([...fetched.jwt.keys.keys()], [...ca.bundle().jwt.keys.keys()], 'the JWT authorities')
  t.equal(fetched.sequence, ca.bundle().sequence, 'spiffe_sequence')
  t.equal(fetched.refreshHintSeconds, ca.bundle().refreshHintSeconds, 'spiffe_refresh_hint')
  t.same(asked, [A.name], 'the endpoint ID\'s trust domain bundle was asked for')
})

void t.test('bundle fetch – https_spiffe: an endpoint that is not the expected SPIFFE ID is refused', async t => {
  const ca = await openCa(t, A)
  const port = await startEndpoint(t, ca)
  const options: BundleFetchOptions = { bundleFor: td => td.equals(A) ? ca.bundle() : undefined }
  await refused(t, fetchBundle(spiffeTarget(A, `https://127.0.0.1:${port}/`, `spiffe://${A.name}/spire/other`), options), 'endpoint_id',
    new RegExp(`is not spiffe://${A.name}/spire/other: peer is spiffe://${A.name}/spire/server`))
})

void t.test('bundle fetch – https_spiffe: verified with the endpoint ID\'s own trust domain\'s bundle, never another', async t => {
  const [caA, caB, otherA] = [await openCa(t, A), await openCa(t, B), await openCa(t, A)]
  const port = await startEndpoint(t, caA)
  const url = `https://127.0.0.1:${port}/`
  // B federates through an endpoint that A serves (§7.6): A's bundle verifies it, B's is not asked for.
  const viaA = await fetchBundle(spiffeTarget(B, url, `spiffe://${A.name}/spire/server`), { bundleFor: td => td.equals(A) ? caA.bundle() : td.equals(B) ? caB.bundle() : undefined })
  t.ok(viaA.trustDomain.equals(B), 'parsed as the relationship\'s trust domain')
  t.same(viaA.x509.authorities.map(c => c.fingerprint256), caA.bundle().x509.authorities.map(c => c.fingerprint256))

  await refused(t, fetchBundle(spiffeTarget(A, url, `spiffe://${A.name}/spire/server`), { bundleFor: () => otherA.bundle() }), 'tls',
    /not an X509-SVID of plant-a\.example/)
  t.pass('above: another CA\'s bundle under the same trust domain name does not verify the endpoint')
  await refused(t, fetchBundle(spiffeTarget(A, url, `spiffe://${A.name}/spire/server`), { bundleFor: () => caB.bundle() }), 'no_endpoint_bundle')
  t.pass('above: a bundle of the wrong trust domain is not used to verify A\'s endpoint')
  // A source holding both: an endpoint of B expected to be A's server fails, though B's bundle would verify it.
  const both = { getX509Bundle: (td: TrustDomain) => td.equals(A) ? caA.bundle().x509 : td.equals(B) ? caB.bundle().x509 : undefined }
  const portB = await startEndpoint(t, caB)
  await refused(t, fetchBundle(spiffeTarget(A, `https://127.0.0.1:${portB}/`, `spiffe://${A.name}/spire/server`), { bundleFor: () => both }), 'endpoint_id')
  // A Web PKI certificate is no X509-SVID.
  const web = await startHttps(t, (_req, res) => { res.end(servedB) })
  await refused(t, fetchBundle(spiffeTarget(A, `https://localhost:${web.port}/`, `spiffe://${A.name}/spire/server`), { bundleFor: () => caA.bundle() }), 'tls', /no URI SAN/)
  t.same(web.requests, [], 'and its answer was never asked for by a request it could read')
})

void t.test('bundle fetch – https_spiffe: no bundle held for the endpoint\'s trust domain is refused before connecting', async t => {
  let connections = 0
  const port = await listen(t, createNetServer(socket => { connections++; socket.destroy() }))
  await refused(t, fetchBundle(spiffeTarget(B, `https://127.0.0.1:${port}/`, `spiffe://${B.name}/spire/server`), { bundleFor: () => undefined }), 'no_endpoint_bundle',
    /no bundle held for plant-b\.example to authenticate its endpoint: give the relationship a bootstrap bundle/)
  const empty = { getX509Bundle: (td: TrustDomain) => new X509Bundle(td) }
  await refused(t, fetchBundle(spiffeTarget(B, `https://127.0.0.1:${port}/`, `spiffe://${B.name}/spire/server`), { bundleFor: () => empty }), 'no_endpoint_bundle')
  t.equal(connections, 0, 'no connection was made')
})

void t.test('bundle fetch – https_web: Web PKI with the test CA; GET with Accept: application/json, SNI the URL\'s host', async t => {
  const server = await startHttps(t, (_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }).end(servedB) })
  const fetched = await fetchBundle(webTarget(`https://localhost:${server.port}/bundle?format=spiffe`), webOptions)
  t.ok(fetched.trustDomain.equals(B))
  t.same(fetched.x509.authorities.map(c => c.fingerprint256), [bRoot.cert.fingerprint256])
  t.equal(fetched.sequence, 7)
  t.equal(fetched.refreshHintSeconds, 60)
  t.same(server.requests, [{ method: 'GET', url: '/bundle?format=spiffe', accept: 'application/json' }])
  t.same(server.sni, ['localhost'])
})

void t.test('bundle fetch – https_web: a host name the certificate does not name, or a CA not trusted, is refused', async t => {
  const server = await startHttps(t, (_req, res) => { res.end(servedB) })
  await refused(t, fetchBundle(webTarget(`https://127.0.0.1:${server.port}/`), webOptions), 'tls', /IP: 127\.0\.0\.1 is not in the cert's list/)
  await refused(t, fetchBundle(webTarget(`https://localhost:${server.port}/`), { bundleFor: () => undefined }), 'tls', /local issuer|self-signed|unable to verify/i)
  t.same(server.requests, [], 'no request reached the server')
})

void t.test('bundle fetch – https_web: a server certificate with a SPIFFE ID is refused with SPIRE\'s advice', async t => {
  const server = await startHttps(t, (_req, res) => { res.end(servedB) }, webCertificate(['localhost'], [`spiffe://${B.name}/spire/server`]))
  await refused(t, fetchBundle(webTarget(`https://localhost:${server.port}/`), webOptions), 'tls',
    /failed to authenticate bundle endpoint using web authentication but the server certificate contains SPIFFE ID "spiffe:\/\/plant-b\.example\/spire\/server": maybe use https_spiffe instead of https_web/)
})

/** Serves `status` and a body that never ends (chunked), until the client goes; `closed` resolves then. */
function endless (status: number): { handler: RequestListener, closed: Promise<number> } {
  let resolveClosed: (written: number) => void = () => {}
  const closed = new Promise<number>(resolve => { resolveClosed = resolve })
  const chunk = Buffer.alloc(16 * 1024, 'x')
  return {
    closed,
    handler: (_req, res) => {
      let written = 0
      res.writeHead(status, { 'content-type': 'application/json' })
      const pump = (): void => { while (!res.destroyed && res.write(chunk)) written += chunk.length }
      res.on('drain', pump)
      res.once('close', () => { resolveClosed(written) })
      res.write('{"keys": ["')
      pump()
    }
  }
}

void t.test('bundle fetch – a status other than 200 is refused, with the start of the body, as SPIRE says it', async t => {
  const server = await startHttps(t, (_req, res) => { res.writeHead(404).end(`not found ${'x'.repeat(1000)}`) })
  const err = await fetchBundle(webTarget(`https://localhost:${server.port}/`), webOptions).catch((err: BundleFetchError) => err)
  t.match(err, { reason: 'status', message: /unexpected status 404 fetching bundle: not found x+$/ })
  t.equal(/fetching bundle: (.*)$/.exec((err as Error).message)?.[1].length, 200, 'the body cut to 200 characters')
  const flood = endless(503)
  const flooding = await startHttps(t, flood.handler)
  await refused(t, fetchBundle(webTarget(`https://localhost:${flooding.port}/`), webOptions), 'status', /unexpected status 503 fetching bundle: \{"keys": \["x+$/)
  t.ok(await flood.closed < 1024 * 1024, 'a refusal\'s endless body is not read on')
})

void t.test('bundle fetch – an endless body is cut off at the size limit', async t => {
  const flood = endless(200)
  const server = await startHttps(t, flood.handler)
  await refused(t, fetchBundle(webTarget(`https://localhost:${server.port}/`), { ...webOptions, maxBytes: 64 * 1024, timeoutMs: 5_000 }), 'too_large', /exceeds the limit of 65536 bytes/)
  t.ok(await flood.closed < 4 * 1024 * 1024, 'the client hung up')
  const byDefault = endless(200)
  const second = await startHttps(t, byDefault.handler)
  await refused(t, fetchBundle(webTarget(`https://localhost:${second.port}/`), webOptions), 'too_large', /1048576 bytes/)
  const declared = await startHttps(t, (_req, res) => { res.writeHead(200, { 'content-length': String(2 * 1024 * 1024) }).write('{') })
  await refused(t, fetchBundle(webTarget(`https://localhost:${declared.port}/`), { ...webOptions, timeoutMs: 5_000 }), 'too_large', /is 2097152 bytes/)
})

void t.test('bundle fetch – a server that never answers is given up at the deadline', async t => {
  const silentHttp = await startHttps(t, () => {})
  const started = Date.now()
  await refused(t, fetchBundle(webTarget(`https://localhost:${silentHttp.port}/`), { ...webOptions, timeoutMs: 300 }), 'timeout', /no complete answer within 300 ms/)
  t.ok(Date.now() - started < 3_000, 'at the deadline')
  const silentTcp = await listen(t, createNetServer(() => {}))
  await refused(t, fetchBundle(webTarget(`https://localhost:${silentTcp}/`), { ...webOptions, timeoutMs: 300 }), 'timeout')
  const slowBody = await startHttps(t, (_req, res) => { res.writeHead(200).write('{"keys": [') })
  await refused(t, fetchBundle(webTarget(`https://localhost:${slowBody.port}/`), { ...webOptions, timeoutMs: 300 }), 'timeout')
})

void t.test('bundle fetch – a connection that breaks, or an answer that is not HTTP', async t => {
  const midBody = await startHttps(t, (_req, res) => {
    res.writeHead(200, { 'content-length': '1000' }).write('{"keys": [')
    setTimeout(() => { res.socket?.destroy() }, 20)
  })
  await refused(t, fetchBundle(webTarget(`https://localhost:${midBody.port}/`), webOptions), 'connect')
  const midChunks = await startHttps(t, (_req, res) => {
    res.writeHead(200).write('{"keys": [')
    setTimeout(() => { res.socket?.destroy() }, 20)
  })
  await refused(t, fetchBundle(webTarget(`https://localhost:${midChunks.port}/`), webOptions), 'connect')
  const garbage = createTlsServer({ key: localhostCert.keyPem, cert: localhostCert.chainPem }, socket => { socket.on('error', () => {}); socket.end('SSH-2.0-OpenSSH\r\n\r\n\u0000\u0001garbage') })
  await refused(t, fetchBundle(webTarget(`https://localhost:${await listen(t, garbage)}/`), webOptions), 'connect')
  const notTls = await listen(t, createNetServer(socket => { socket.end('HTTP/1.1 200 OK\r\n\r\n') }))
  await refused(t, fetchBundle(webTarget(`https://localhost:${notTls}/`), webOptions), 'tls')
  const closed = createNetServer()
  const port = await listen(t, closed)
  await new Promise(resolve => closed.close(resolve))
  await refused(t, fetchBundle(webTarget(`https://localhost:${port}/`), webOptions), 'connect', /ECONNREFUSED/)
})

void t.test('bundle fetch – a body that is no SPIFFE bundle, or one with no authority at all', async t => {
  for (const [body, message] of [
    ['{"keys": [', /not valid JSON/],
    ['<html>hello</html>', /not valid JSON/],
    ['{"no": "keys"}', /"keys" array/],
    ['{"keys": [{"use": "x509-svid", "x5c": ["bm90IGEgY2VydA=="]}]}', /malformed certificate/],
    ['{"keys": []}', /no X\.509 authority and no JWT key/]
  ] as const) {
    const server = await startHttps(t, (_req, res) => { res.end(body) })
    await refused(t, fetchBundle(webTarget(`https://localhost:${server.port}/`), webOptions), 'invalid_bundle', message)
  }
})

void t.test('bundle fetch – a URL that is not https is refused', async t => {
  await refused(t, fetchBundle(webTarget('http://localhost:1/'), webOptions), 'connect', /over https only/)
  await refused(t, fetchBundle(webTarget('not a url'), webOptions), 'connect', /not a URL/)
})
