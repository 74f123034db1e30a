/**
 * The agent's SPIFFE bundle endpoint (`federation.bundleEndpoint`), fetched over real TLS as a federating peer
 * would: https_spiffe (the agent's SVID spiffe://<td>/spire/server, verified against the trust domain's bundle) and
 * https_web (an operator's certificate, made by the openssl CLI, reloaded when its files change); what it refuses
 * (other paths, methods, a caller over its rate); and its configuration errors.
 */
import t from 'tap'
import type { Test } from 'tap'
import { X509Certificate } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:https'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import pino from 'pino'
import { Agent } from '../../../agent/agent'
import { loadAgentConfig } from '../../../agent/config'
import { BundleEndpointServer } from '../../../agent/federation/bundle-endpoint-server'
import { freePort } from '../../../bench/proxy/processes'
import { parseTrustDomain } from '../../../spiffe/id'
import { SpiffeBundle } from '../../../spiffe/spiffe-bundle'
import { verifyX509Svid } from '../../../spiffe/x509-svid'
import { must } from '../../helpers/command'

const TD = parseTrustDomain('plant-a.example')

interface Fetched { status: number, body: string, headers: Record<string, unknown>, peer: Buffer[] }

/** One request to https://host:port/path; the server's chain as it presented it (DER, leaf first). */
async function fetch (address: string, path: string, options: { method?: string, ca?: string, servername?: string } = {}): Promise<Fetched> {
  const port = Number(address.slice(address.lastIndexOf(':') + 1))
  return await new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: options.method ?? 'GET', servername: options.servername, ca: options.ca, rejectUnauthorized: options.ca !== undefined, agent: false }, res => {
      const peer: Buffer[] = []
      for (let cert = (res.socket as unknown as { getPeerCertificate: (d: boolean) => { raw: Buffer, issuerCertificate?: unknown } }).getPeerCertificate(true); cert?.raw !== undefined && !peer.some(p => p.equals(cert.raw)); cert = cert.issuerCertificate as typeof cert) peer.push(cert.raw)
      let body = ''
      res.on('data', (chunk: Buffer) => { body += chunk.toString() })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body, headers: res.headers, peer }) })
    })
    req.on('error', reject)
    req.end()
  })
}

async function startAgent (t: Test, bundleEndpoint: string[]): Promise<{ agent: Agent, dir: string, logs: () => Array<Record<string, unknown>> }> {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-bundle-endpoint-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  writeFileSync(join(dir, 'agent.yaml'), [
    `trustDomain: ${TD.name}`, `dataDir: ${join(dir, 'data')}`, `socket: ${join(dir, 'w.sock')}`, `adminSocket: ${join(dir, 'a.sock')}`,
    `serverSocket: ${join(dir, 's', 'api.sock')}`, 'federation:', '  bundleEndpoint:', ...bundleEndpoint.map(line => `    ${line}`), ''
  ].join('\n'))
  const lines: string[] = []
  const sink = new Writable({ write (chunk: Buffer, _encoding, done) { lines.push(...chunk.toString().split('\n').filter(l => l !== '')); done() } })
  const agent = await Agent.start(loadAgentConfig(join(dir, 'agent.yaml')), pino({ level: 'debug' }, sink))
  t.teardown(async () => { await agent.stop() })
  return { agent, dir, logs: () => lines.map(line => JSON.parse(line) as Record<string, unknown>) }
}

async function webCertificate (dir: string, name: string): Promise<{ cert: string, key: string }> {
  const [cert, key] = [join(dir, `${name}.pem`), join(dir, `${name}.key`)]
  await must('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert,
    '-subj', `/CN=${name}`, '-addext', 'subjectAltName=DNS:localhost', '-days', '1'])
  return { cert, key }
}

void t.test('bundle endpoint – https_spiffe: the bundle in the SPIFFE format, served with the agent\'s own SVID', async t => {
  const address = `127.0.0.1:${await freePort()}`
  const { agent, logs } = await startAgent(t, [`address: ${address}`, 'profile: https_spiffe'])
  t.equal(agent.bundleEndpoint?.address, address)
  const fetched = await fetch(address, '/')
  t.equal(fetched.status, 200)
  t.match(fetched.headers['content-type'], 'application/json')
  t.equal(verifyX509Svid(fetched.peer, agent.ca.bundle().x509).toString(), `spiffe://${TD.name}/spire/server`, 'the endpoint\'s SPIFFE ID, verified against the trust domain\'s bundle')
  const served = SpiffeBundle.parse(TD, fetched.body)
  const own = agent.store.ownBundle(agent.ca.bundle())
  t.same(served.x509.authorities.map(c => c.fingerprint256), own.x509.authorities.map(c => c.fingerprint256), 'the X.509 authorities')
  t.same([...served.jwt.keys.keys()].sort(), [...own.jwt.keys.keys()].sort(), 'the JWT authorities')
  t.equal(served.sequence, own.sequence, 'spiffe_sequence')
  t.ok((served.refreshHintSeconds ?? 0) > 0, `spiffe_refresh_hint ${String(served.refreshHintSeconds)} s`)
  t.ok(logs().some(line => line.msg === 'federation: bundle served'), 'logged (debug)')

  t.match(await fetch(address, '/other'), { status: 404 })
  t.match(await fetch(address, '/', { method: 'POST' }), { status: 405, headers: { allow: 'GET' } })
  t.ok(logs().some(line => line.msg === 'federation: bundle endpoint request refused' && line.reason === 'method_not_allowed'), 'refusals are logged with the reason')
})

void t.test('bundle endpoint – a caller over its rate is refused 429 and logged once', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-bundle-endpoint-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const { agent } = await startAgent(t, [`address: 127.0.0.1:${await freePort()}`, 'profile: https_spiffe'])
  const lines: string[] = []
  const logger = pino({ level: 'info' }, new Writable({ write (chunk: Buffer, _e, done) { lines.push(chunk.toString()); done() } }))
  const endpoint = await BundleEndpointServer.start({ host: '127.0.0.1', port: await freePort(), profile: { kind: 'https_spiffe' }, ca: agent.ca, store: agent.store, logger, rate: { perSecond: 1, burst: 3 } })
  t.teardown(async () => { await endpoint.stop() })
  const statuses: number[] = []
  for (let i = 0; i < 6; i++) statuses.push((await fetch(endpoint.address, '/')).status)
  t.same(statuses.slice(0, 3), [200, 200, 200], 'the burst is served')
  t.ok(statuses.slice(3).every(s => s === 429), `then 429 (${statuses.join(', ')})`)
  t.equal(lines.filter(l => l.includes('rate_limited')).length, 1, 'one log line for the refusals in a row')
})

void t.test('bundle endpoint – https_web: the operator\'s certificate, reloaded when the files change; a broken pair keeps the last good one', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-bundle-web-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const first = await webCertificate(dir, 'first')
  const { agent } = await startAgent(t, [`address: 127.0.0.1:${await freePort()}`, 'profile: https_spiffe'])
  const lines: string[] = []
  const logger = pino({ level: 'info' }, new Writable({ write (chunk: Buffer, _e, done) { lines.push(chunk.toString()); done() } }))
  const [cert, key] = [join(dir, 'served.pem'), join(dir, 'served.key')]
  writeFileSync(cert, await must('cat', [first.cert]))
  writeFileSync(key, await must('cat', [first.key]))
  const endpoint = await BundleEndpointServer.start({ host: '127.0.0.1', port: await freePort(), profile: { kind: 'https_web', certFile: cert, keyFile: key }, ca: agent.ca, store: agent.store, logger, reloadCheckMs: 50 })
  t.teardown(async () => { await endpoint.stop() })
  const firstPem = await must('cat', [first.cert])
  const served = await fetch(endpoint.address, '/', { ca: firstPem, servername: 'localhost' })
  t.equal(served.status, 200, 'a client trusting the operator\'s certificate for localhost fetches the bundle')
  t.equal(new X509Certificate(served.peer[0]).subject, 'CN=first')

  const second = await webCertificate(dir, 'second')
  writeFileSync(key, await must('cat', [second.key]))
  writeFileSync(cert, await must('cat', [second.cert]))
  const secondPem = await must('cat', [second.cert])
  let reloaded: Fetched | undefined
  for (let i = 0; i < 40 && reloaded === undefined; i++) {
    await new Promise(resolve => setTimeout(resolve, 50))
    const now = await fetch(endpoint.address, '/', { ca: secondPem, servername: 'localhost' }).catch(() => undefined)
    if (now?.status === 200) reloaded = now
  }
  t.equal(reloaded === undefined ? undefined : new X509Certificate(reloaded.peer[0]).subject, 'CN=second', 'the new certificate is served without a restart')
  t.ok(lines.some(l => l.includes('bundle endpoint certificate reloaded')), 'and the reload is logged')

  writeFileSync(cert, 'not a certificate\n')
  await new Promise(resolve => setTimeout(resolve, 300))
  t.ok(lines.some(l => l.includes('certificate not reloaded; serving the last good one')), 'a broken pair is logged')
  t.equal(new X509Certificate((await fetch(endpoint.address, '/', { ca: secondPem, servername: 'localhost' })).peer[0]).subject, 'CN=second', 'and the last good one kept')
})

void t.test('bundle endpoint – refused settings: https_web without its files, files with https_spiffe, not host:port, a port in use, an unreadable certificate', async t => {
  const base = { trustDomain: TD.name }
  const withEndpoint = (bundleEndpoint: object): string => {
    const dir = mkdtempSync(join(tmpdir(), 'chaperone-bundle-cfg-'))
    t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
    writeFileSync(join(dir, 'agent.json'), JSON.stringify({ ...base, federation: { bundleEndpoint } }))
    return join(dir, 'agent.json')
  }
  t.throws(() => loadAgentConfig(withEndpoint({ address: '0.0.0.0:8443', profile: 'https_web' })), /certFile/)
  t.throws(() => loadAgentConfig(withEndpoint({ address: '0.0.0.0:8443', profile: 'https_spiffe', certFile: '/x.pem' })), /federation\.bundleEndpoint/)
  t.throws(() => loadAgentConfig(withEndpoint({ address: '8443', profile: 'https_spiffe' })), /must be host:port.*0\.0\.0\.0:8443/)
  const busy = createServer()
  await new Promise<void>(resolve => busy.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { busy.close() })
  const port = (busy.address() as { port: number }).port
  const { agent } = await startAgent(t, [`address: 127.0.0.1:${await freePort()}`, 'profile: https_spiffe'])
  const logger = pino({ level: 'silent' })
  await t.rejects(BundleEndpointServer.start({ host: '127.0.0.1', port, profile: { kind: 'https_spiffe' }, ca: agent.ca, store: agent.store, logger }),
    { code: 'ERR_BUNDLE_ENDPOINT_LISTEN', message: /EADDRINUSE/ })
  await t.rejects(BundleEndpointServer.start({ host: '127.0.0.1', port: await freePort(), profile: { kind: 'https_web', certFile: '/nonexistent/cert.pem', keyFile: '/nonexistent/key.pem' }, ca: agent.ca, store: agent.store, logger }),
    { code: 'ERR_BUNDLE_ENDPOINT_CERT', message: /cannot read the bundle endpoint's certificate \/nonexistent\/cert\.pem/ })
})
