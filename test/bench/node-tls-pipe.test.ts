import t from 'tap'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, get } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { PeerCertificate } from 'node:tls'
import { createTestCa } from '../../certs-test'
import { CLIENT_ID, NODE_FLAGS, SERVER_ID } from '../../bench/proxy/chaperone'
import type { Pki } from '../../bench/proxy/configs'
import { hopArgs, namesId, startNodeTlsPair } from '../../bench/proxy/node-tls-pipe'
import { Processes } from '../../bench/proxy/processes'

const BUILT = join(__dirname, '..', '..', 'dist', 'bench', 'proxy', 'node-tls-pipe.js')

/** Writes a bench PKI whose client SVID names `clientId`. */
function writePki (dir: string, clientId: string): Pki {
  const ca = createTestCa('bench.example')
  const write = (name: string, id: string): Pki['client'] => {
    const svid = ca.issueSvid(id)
    const [cert, key] = [join(dir, `${name}.pem`), join(dir, `${name}.key`)]
    writeFileSync(cert, svid.chainPem)
    writeFileSync(key, svid.keyPem)
    return { cert, key, combined: '' }
  }
  writeFileSync(join(dir, 'bundle.pem'), ca.certPem)
  return { client: write('client', clientId), server: write('server', SERVER_ID), bundle: join(dir, 'bundle.pem') }
}

async function status (port: number): Promise<number | string> {
  return await new Promise(resolve => {
    get({ host: '127.0.0.1', port, path: '/' }, res => { res.resume(); resolve(res.statusCode ?? 0) }).on('error', err => { resolve(err.message) })
  })
}

void t.test('namesId: a URI SAN naming the ID, exactly', async t => {
  const cert = (subjectaltname?: string): PeerCertificate => ({ subjectaltname }) as PeerCertificate
  t.ok(namesId(cert(`DNS:server.bench.example, URI:${SERVER_ID}`), SERVER_ID))
  t.notOk(namesId(cert(`URI:${SERVER_ID}/x`), SERVER_ID))
  t.notOk(namesId(cert(`DNS:${SERVER_ID}`), SERVER_ID))
  t.notOk(namesId(cert(), SERVER_ID))
})

void t.test('hopArgs: each hop its own SVID and the other\'s ID', async t => {
  const svid = (name: string): Pki['client'] => ({ cert: `/s/${name}.pem`, key: `/s/${name}.key`, combined: '' })
  const pki: Pki = { client: svid('client'), server: svid('server'), bundle: '/s/bundle.pem' }
  t.same(hopArgs('client', 1, 2, pki), ['client', '1', '2', '/s/client.pem', '/s/client.key', '/s/bundle.pem', SERVER_ID])
  t.same(hopArgs('server', 2, 3, pki), ['server', '2', '3', '/s/server.pem', '/s/server.key', '/s/bundle.pem', CLIENT_ID])
  t.same(NODE_FLAGS, ['--max-semi-space-size=1'], 'the sidecars\' flags')
})

void t.test('the bare Node.js TLS pipe carries a request over mutual TLS, and its server hop refuses a client with another ID', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'node-tls-pipe-'))
  const backend = createServer((_req, res) => { res.end('ok') }).listen(0, '127.0.0.1')
  await new Promise(resolve => backend.once('listening', resolve))
  const processes = new Processes()
  t.teardown(async () => {
    await processes.stopAll()
    backend.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const backendPort = (backend.address() as AddressInfo).port
  const [good, bad] = [join(dir, 'good'), join(dir, 'bad')]
  for (const d of [good, bad]) mkdirSync(d)
  const allowed = await startNodeTlsPair(processes, writePki(good, CLIENT_ID), backendPort, BUILT)
  t.equal(await status(allowed[0].port), 200, 'through both hops to the backend')
  const refused = await startNodeTlsPair(processes, writePki(bad, 'spiffe://bench.example/someone-else'), backendPort, BUILT)
  t.not(await status(refused[0].port), 200, 'a client SVID naming another ID gets nothing from the backend')
})
