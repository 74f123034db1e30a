import t from 'tap'
import type { Test } from 'tap'
import { createHash, X509Certificate } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import { parseXfcc } from '../../spiffe/peer-header'
import { NGINX_MISSING, startNginx } from '../helpers/nginx'
import type { RunningNginx } from '../helpers/nginx'
import { TD, reportingApp, startMesh } from '../helpers/mesh'
import type { Mesh } from '../helpers/mesh'
import { tcpExchange, writeSvidFiles } from '../helpers/peers'
import { policy } from '../helpers/policy-text'

// nginx as a real mutual-TLS peer of the sidecar, both ways, with SVIDs from the real agent: as the client of an
// inbound HTTP listener (proxy_ssl_certificate), and as the server an outbound listener connects to
// (ssl_verify_client against the mesh's bundle). nginx runs in the foreground, single process, from a temporary
// folder; each test starts its own and stops it when it ends.

const POLICY = policy(
  { name: 'nginx-to-server', from: [`${TD}/nginx`], to: [`${TD}/server`], action: 'allow' },
  { name: 'client-to-nginx', from: [`${TD}/client`], to: [`${TD}/nginx`], action: 'allow' }
)

let mesh: Mesh
let files: { cert: string, key: string, bundle: string }
let nginxLeaf: X509Certificate

/** nginx with `server(port)` as its server block, stopped when the test `t` ends. */
async function nginxFor (t: Test, name: string, server: (port: number) => string): Promise<RunningNginx> {
  const nginx = await startNginx(join(mesh.dir, name), server)
  t.teardown(nginx.stop)
  return nginx
}

/** An HTTP/1.1 request to loopback `port`; resolves with the status and body. */
async function get (port: number, path: string): Promise<{ status: number, body: string }> {
  return await new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path }, res => {
      let body = ''
      res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk }).on('end', () => { resolve({ status: res.statusCode ?? 0, body }) })
    }).on('error', reject).end()
  })
}

if (NGINX_MISSING !== false) {
  t.plan(0, NGINX_MISSING)
} else {
  t.before(async () => {
    mesh = await startMesh(POLICY)
    for (const name of ['client', 'server', 'nginx']) await mesh.register(`${TD}/${name}`)
    const svid = await mesh.svid(`${TD}/nginx`)
    files = { ...writeSvidFiles(mesh.dir, 'nginx', svid), bundle: join(mesh.dir, 'bundle.pem') }
    writeFileSync(files.bundle, svid.bundlePem)
    nginxLeaf = new X509Certificate(svid.certPem)
  })
  t.teardown(async () => { await mesh.close() })

  void t.test('nginx interop – nginx as the client: a request proxied by nginx with its SVID reaches the app, which sees nginx\'s ID in X-Forwarded-Client-Cert', async t => {
    const app = await reportingApp()
    t.teardown(() => { app.server.close() })
    const server = await mesh.startSidecar(`${TD}/server`, { inboundHttp: [`127.0.0.1:0=127.0.0.1:${app.port}`] })
    // proxy_ssl_verify stays off: nginx always checks the server's certificate against a host name (proxy_ssl_name),
    // and an SVID carries no DNS name (nor a subject CN), only its SPIFFE ID as a URI SAN. Not under test here:
    // the sidecar's certificate is; nginx's, by the sidecar.
    const nginx = await nginxFor(t, 'nginx-client', port => `
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass https://127.0.0.1:${server.port('inbound-1')};
      proxy_http_version 1.1;
      proxy_ssl_certificate ${files.cert};
      proxy_ssl_certificate_key ${files.key};
      proxy_ssl_verify off;
    }
  }`)
    for (const path of ['/v1/items?page=1', '/v1/items?page=2']) {
      const response = await get(nginx.port, path)
      t.equal(response.status, 200, `${path}: ${response.body} ${nginx.log()}`)
      const seen = JSON.parse(response.body) as { url: string, headers: Record<string, string> }
      t.equal(seen.url, path, `${path}: the app gets the request nginx received`)
      t.same(parseXfcc(seen.headers['x-forwarded-client-cert']), [{
        by: `${TD}/server`, hash: createHash('sha256').update(nginxLeaf.raw).digest('hex'), uri: `${TD}/nginx`
      }], `${path}: the app sees nginx's SPIFFE ID`)
    }
    t.same(server.logs.filter(line => line.event === 'handshake_failed' || line.event === 'denied'), [], 'nothing refused')
  })

  void t.test('nginx interop – nginx as the server verifying client certificates: the outbound listeners get SUCCESS, TCP and HTTP', async t => {
    const nginx = await nginxFor(t, 'nginx-server', port => `
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${files.cert};
    ssl_certificate_key ${files.key};
    ssl_client_certificate ${files.bundle};
    ssl_verify_client on;
    ssl_verify_depth 4;
    location / {
      default_type text/plain;
      return 200 "verify=$ssl_client_verify\\ncert=$ssl_client_escaped_cert\\n";
    }
  }`)
    const target = `127.0.0.1:${nginx.port}@${TD}/nginx`
    const client = await mesh.startSidecar(`${TD}/client`, { outbound: [`127.0.0.1:0=${target}`], outboundHttp: [`127.0.0.1:0=${target}`] })
    const clientLeaf = new X509Certificate((await mesh.svid(`${TD}/client`)).certPem)
    /** nginx's answer: its verdict on the client certificate, that certificate's SAN, and whether it is the client's SVID. */
    const verdict = (body: string): { verify?: string, san?: string, clientSvid: boolean } => {
      const fields = Object.fromEntries(body.trim().split('\n').map(line => line.split(/=(.*)/s).slice(0, 2))) as Record<string, string | undefined>
      const cert = new X509Certificate(decodeURIComponent(fields.cert ?? ''))
      return { verify: fields.verify, san: cert.subjectAltName, clientSvid: cert.fingerprint256 === clientLeaf.fingerprint256 }
    }
    const expected = { verify: 'SUCCESS', san: `URI:${TD}/client`, clientSvid: true }

    const tcp = await tcpExchange(client.port('outbound-1'), 'GET /whoami HTTP/1.1\r\nHost: nginx\r\nConnection: close\r\n\r\n')
    t.notOk(tcp.timedOut, 'nginx closes the connection after its answer')
    const [head, body = ''] = tcp.received.split('\r\n\r\n')
    t.match(head, /^HTTP\/1\.1 200 OK\r\n/, `TCP mode: 200 (${tcp.received} ${nginx.log()})`)
    t.same(verdict(body), expected, 'TCP mode: nginx verified the sidecar\'s SVID to the bundle')

    const http = await get(client.port('outbound-2'), '/whoami')
    t.equal(http.status, 200, `HTTP mode: ${http.body} ${nginx.log()}`)
    if (http.status === 200) t.same(verdict(http.body), expected, 'HTTP mode: nginx verified the sidecar\'s SVID to the bundle')
    t.same(client.logs.filter(line => line.event === 'handshake_failed' || line.event === 'denied'), [], 'nothing refused: nginx\'s SVID is the expected ID')
  })
}
