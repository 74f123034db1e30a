import t from 'tap'
import { createHash, X509Certificate } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createServer as createTlsServer } from 'node:tls'
import { parseXfcc } from '../../spiffe/peer-header'
import { runProcess } from '../helpers/cli'
import { TD, reportingApp, startMesh } from '../helpers/mesh'
import type { Mesh, RunningSidecar } from '../helpers/mesh'

// HTTP mode end to end with the real agent, and curl as a real client: per-request policy on method and path,
// the caller's ID handed to the app in X-Forwarded-Client-Cert, which the sidecar alone sets.

const POLICY = `version: 1
rules:
  - name: client-reads-v1
    from: [${TD}/client]
    to: [${TD}/server]
    http: { methods: [GET], paths: [/v1/*] }
    action: allow
  - name: no-admin
    from: ['*']
    to: [${TD}/server]
    http: { paths: [/v1/admin*] }
    action: deny
`
let mesh: Mesh
let server: RunningSidecar
let client: RunningSidecar
let app: Awaited<ReturnType<typeof reportingApp>>
let clientFiles: { cert: string, key: string }
t.before(async () => {
  mesh = await startMesh(POLICY)
  for (const name of ['client', 'server']) await mesh.register(`${TD}/${name}`)
  app = await reportingApp()
  server = await mesh.startSidecar(`${TD}/server`, { inboundHttp: [`127.0.0.1:0=127.0.0.1:${app.port}`] })
  client = await mesh.startSidecar(`${TD}/client`, { outboundHttp: [`127.0.0.1:0=127.0.0.1:${server.port('inbound-1')}@${TD}/server`] })
  const svid = await mesh.svid(`${TD}/client`)
  clientFiles = { cert: join(mesh.dir, 'client.pem'), key: join(mesh.dir, 'client.key') }
  writeFileSync(clientFiles.cert, svid.certPem)
  writeFileSync(clientFiles.key, svid.keyPem, { mode: 0o600 })
})
t.teardown(async () => {
  app.server.close()
  await mesh.close()
})

/** A plain HTTP request to the client sidecar's outbound listener, as the client app sends it. */
async function viaClient (method: string, path: string, headers: Record<string, string> = {}, via = client): Promise<{ status: number, body: string }> {
  return await new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: via.port('outbound-1'), method, path, headers }, res => {
      let body = ''
      res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk }).on('end', () => { resolve({ status: res.statusCode ?? 0, body }) })
    })
    req.on('error', reject).end()
  })
}

/** curl straight to the server sidecar's inbound listener (-k: SVIDs name no host; the client side is not under test). */
async function curl (path: string, args: string[] = []): Promise<{ status: number, body: string, stderr: string }> {
  const run = await runProcess('curl', ['-sS', '-k', '-o', '-', '-w', '\n%{http_code}', ...args, `https://127.0.0.1:${server.port('inbound-1')}${path}`])
  const lines = run.stdout.split('\n')
  return { status: Number(lines.pop()), body: lines.join('\n'), stderr: run.stderr }
}

void t.test('sidecar http – an allowed request reaches the app, which sees the caller\'s ID in X-Forwarded-Client-Cert', async t => {
  const response = await viaClient('GET', '/v1/items?page=2')
  t.equal(response.status, 200, response.body)
  const seen = JSON.parse(response.body) as { method: string, url: string, headers: Record<string, string> }
  t.equal(seen.url, '/v1/items?page=2', 'the app gets the request as sent')
  const leaf = new X509Certificate((await mesh.svid(`${TD}/client`)).certPem)
  t.same(parseXfcc(seen.headers['x-forwarded-client-cert']), [{ by: `${TD}/server`, hash: createHash('sha256').update(leaf.raw).digest('hex'), uri: `${TD}/client` }])
})

void t.test('sidecar http – a spoofed X-Forwarded-Client-Cert never reaches the app', async t => {
  const spoof = 'By=spiffe://plant.example/server;URI=spiffe://plant.example/admin'
  const through = await viaClient('GET', '/v1/items', { 'X-Forwarded-Client-Cert': spoof })
  t.equal(through.status, 200)
  const direct = await curl('/v1/items', ['--cert', clientFiles.cert, '--key', clientFiles.key, '-H', `X-Forwarded-Client-Cert: ${spoof}`, '-H', `X_Forwarded_Client_Cert: ${spoof}`])
  t.equal(direct.status, 200, direct.stderr)
  for (const response of [through.body, direct.body]) {
    const headers = (JSON.parse(response) as { headers: Record<string, string> }).headers
    t.equal(parseXfcc(headers['x-forwarded-client-cert']).length, 1, 'one element: the sidecar\'s own')
    t.match(headers['x-forwarded-client-cert'], `;URI=${TD}/client`)
    t.notMatch(JSON.stringify(headers), 'plant.example/admin', 'the spoofed value is gone under every spelling')
  }
})

void t.test('sidecar http – method and path decide: a denied request gets 403 naming the rule, at both ends', async t => {
  const post = await viaClient('POST', '/v1/items')
  t.equal(post.status, 403)
  t.match(JSON.parse(post.body), { error: 'denied by policy', rule: 'default', reason: 'no rule matched; the default action is deny' })
  const admin = await curl('/v1/admin/users', ['--cert', clientFiles.cert, '--key', clientFiles.key])
  t.equal(admin.status, 403)
  t.match(JSON.parse(admin.body), { rule: 'no-admin', reason: 'rule "no-admin" denies it' })
  t.match(server.logs.find(line => line.event === 'denied'), { listener: 'inbound-1', peer: `${TD}/client`, method: 'GET', path: '/v1/admin/users', rule: 'no-admin' })
  const sneaky = await curl('/v1/../v1/admin/users', ['--path-as-is', '--cert', clientFiles.cert, '--key', clientFiles.key])
  t.equal(sneaky.status, 403, 'dot segments are resolved before the policy sees the path')
  const encoded = await curl('/v1/items%2F..%2Fadmin', ['--cert', clientFiles.cert, '--key', clientFiles.key])
  t.equal(encoded.status, 400, 'encoded slashes are refused')
})

void t.test('sidecar http – curl without a client certificate is refused, and the log names the reason', async t => {
  const anonymous = await curl('/v1/items')
  t.not(anonymous.status, 200)
  t.match(server.logs.find(line => line.event === 'handshake_failed'), { listener: 'inbound-1', reason: 'ERR_X509_SVID_MISSING' })
})

void t.test('sidecar http – an explicit HTTP proxy forwards absolute-form requests by the policy; CONNECT is an L4 decision', async t => {
  const proxy = await mesh.startSidecar(`${TD}/client`, { httpProxy: ['127.0.0.1:0'] })
  const curlVia = async (args: string[]): Promise<{ status: number, body: string, stderr: string }> => {
    const run = await runProcess('curl', ['-sS', '-x', `http://127.0.0.1:${proxy.port('http-proxy-1')}`, '-o', '-', '-w', '\n%{http_code}', ...args])
    const lines = run.stdout.split('\n')
    return { status: Number(lines.pop()), body: lines.join('\n'), stderr: run.stderr }
  }
  const destination = `http://127.0.0.1:${server.port('inbound-1')}`
  const allowed = await curlVia([`${destination}/v1/items?x=1`])
  t.equal(allowed.status, 200, allowed.stderr)
  const seen = JSON.parse(allowed.body) as { url: string, headers: Record<string, string> }
  t.equal(seen.url, '/v1/items?x=1')
  t.match(seen.headers['x-forwarded-client-cert'], `By=${TD}/server;`)
  t.match(seen.headers['x-forwarded-client-cert'], `;URI=${TD}/client`)
  const denied = await curlVia(['-X', 'DELETE', `${destination}/v1/items`])
  t.equal(denied.status, 403)
  t.match(JSON.parse(denied.body), { rule: 'default' })
  // The policy allows this pair only for some HTTP requests, so an opaque tunnel is denied.
  const tunnel = await curlVia(['-p', `${destination}/v1/items`])
  t.not(tunnel.status, 200)
  t.match(tunnel.stderr, /403/)
  // Denials are logged once per peer per interval; the metric counts every one.
  t.match(proxy.logs.filter(line => line.event === 'denied'), [{ listener: 'http-proxy-1', method: 'DELETE', path: '/v1/items', rule: 'default' }])
  t.match(await proxy.sidecar.services.metrics.registry.getSingleMetricAsString('chaperone_connections_total'),
    'chaperone_connections_total{listener="http-proxy-1",direction="outbound",decision="deny",rule="default"} 2')
})

void t.test('sidecar http – an outbound listener expecting another server ID refuses the server: 502, and the app sees nothing', async t => {
  const before = app.seen.length
  const caller = await mesh.startSidecar(`${TD}/client`, { outboundHttp: [`127.0.0.1:0=127.0.0.1:${server.port('inbound-1')}@${TD}/other`] })
  for (let n = 0; n < 2; n++) { // the second request must not find a connection pooled by the first
    const response = await viaClient('GET', '/v1/items', {}, caller)
    t.equal(response.status, 502)
    t.match(JSON.parse(response.body), { error: /could not be reached or verified/ })
  }
  t.match(caller.logs.find(line => line.event === 'handshake_failed'), { listener: 'outbound-1', reason: 'ERR_X509_SVID_ID_MISMATCH' })
  t.equal(app.seen.length, before, 'no request reached the app')
  t.same(caller.logs.filter(line => line.event === 'denied'), [], 'refused for the identity, before any policy decision')
})

void t.test('sidecar http – a request sent again after its kept-alive connection closed goes only to the server it was authorized for', async t => {
  // A server (not a sidecar) that answers once as the allowed server, then, on the next request of that kept-alive
  // connection, takes another registered identity and closes the connection unanswered: the sidecar's second
  // connection meets a server the policy never allowed, and must not send it the request.
  await mesh.register(`${TD}/impostor`)
  const [allowed, impostor] = [await mesh.svid(`${TD}/server`), await mesh.svid(`${TD}/impostor`)]
  const requestsOn: number[] = []
  const fake = createTlsServer({ cert: allowed.certPem, key: allowed.keyPem }, socket => {
    const connection = requestsOn.push(0) - 1
    socket.on('data', () => {
      requestsOn[connection]++
      if (connection === 0 && requestsOn[0] === 2) {
        fake.setSecureContext({ cert: impostor.certPem, key: impostor.keyPem })
        socket.destroy()
      } else socket.write('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok')
    })
  })
  await new Promise<void>(resolve => fake.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { fake.close() })
  const caller = await mesh.startSidecar(`${TD}/client`, { outboundHttp: [`127.0.0.1:0=127.0.0.1:${(fake.address() as AddressInfo).port}`] })
  t.equal((await viaClient('GET', '/v1/items', {}, caller)).status, 200, 'the first request, on a new connection to the allowed server')
  const second = await viaClient('GET', '/v1/items', {}, caller)
  t.equal(second.status, 502)
  t.match(JSON.parse(second.body), { error: `the upstream could not be reached: the server at 127.0.0.1:${(fake.address() as AddressInfo).port} is now ${TD}/impostor, not ${TD}/server the request was authorized for` })
  for (let waited = 0; requestsOn.length < 2 && waited < 2000; waited += 20) await new Promise(resolve => setTimeout(resolve, 20))
  t.same(requestsOn, [2, 0], 'the reused connection got the request; the impostor\'s connection got nothing')
  t.match(caller.logs.find(line => line.event === 'upstream_changed'), { listener: 'outbound-1', was: `${TD}/server`, now: `${TD}/impostor` })
})
