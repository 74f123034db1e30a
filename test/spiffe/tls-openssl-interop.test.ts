import t from 'tap'
import { once } from 'node:events'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as net from 'node:net'
import * as tls from 'node:tls'
import type { AddressInfo } from 'node:net'
import { createTestCa } from '../../certs-test/pki'
import type { TestSvid } from '../../certs-test/pki'
import { parseTrustDomain } from '../../spiffe/id'
import { X509Bundle } from '../../spiffe/x509-bundle'
import { SpiffeBundle } from '../../spiffe/spiffe-bundle'
import { BundleSet } from '../../spiffe/bundle-set'
import { spiffeCheckServerIdentity, verifyTlsPeer } from '../../spiffe/tls-peer'
import { OPENSSL_MISSING } from '../helpers/openssl'

// Interop with a TLS stack that is not Node's: the openssl CLI as client (s_client) and as server (s_server).
const caA = createTestCa('td-a.test')
const caB = createTestCa('td-b.test')
const bundles = new BundleSet([caA, caB].map(ca => {
  const td = parseTrustDomain(ca.trustDomain)
  return new SpiffeBundle(td, { x509: new X509Bundle(td, [ca.certDer]) })
}))
const dir = mkdtempSync(join(tmpdir(), 'chaperone-interop-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

/** Writes an SVID's chain and key for openssl; returns [certFile, keyFile]. */
function files (name: string, svid: TestSvid): [string, string] {
  const cert = join(dir, `${name}.pem`)
  const key = join(dir, `${name}.key`)
  writeFileSync(cert, svid.chainPem)
  writeFileSync(key, svid.keyPem, { mode: 0o600 })
  return [cert, key]
}
const rootA = join(dir, 'root-a.pem')
writeFileSync(rootA, caA.certPem + caB.certPem)

/** Runs a process to its end, with a time limit, collecting its output. */
async function run (args: string[], input: string): Promise<string> {
  const child = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stdin.end(input)
  const timer = setTimeout(() => child.kill(), 10_000)
  await once(child, 'close')
  clearTimeout(timer)
  return output
}

void t.test('interop – openssl s_client presenting an SVID: our server learns its ID, or refuses a forged one', { skip: OPENSSL_MISSING }, async t => {
  const serverSvid = caA.issueSvid('spiffe://td-a.test/server')
  const seen: string[] = []
  const server = tls.createServer({ cert: serverSvid.chainPem, key: serverSvid.keyPem, ca: caA.certPem + caB.certPem, requestCert: true, rejectUnauthorized: false }, socket => {
    try {
      const id = verifyTlsPeer(socket, bundles)
      seen.push(id.toString())
      socket.end(`peer=${id.toString()}\n`)
    } catch (err) {
      seen.push((err as { code: string }).code)
      socket.destroy()
    }
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  const connect = async (name: string, svid: TestSvid): Promise<string> => {
    const [cert, key] = files(name, svid)
    return await run(['s_client', '-connect', `127.0.0.1:${port}`, '-cert', cert, '-key', key, '-CAfile', rootA, '-verify_return_error', '-quiet'], '')
  }
  t.match(await connect('client', caA.issueSvid('spiffe://td-a.test/client')), /peer=spiffe:\/\/td-a\.test\/client/)
  t.notMatch(await connect('forged', caB.issueSvid('spiffe://td-a.test/client')), /peer=/)
  server.close()
  t.same(seen, ['spiffe://td-a.test/client', 'ERR_X509_SVID_WRONG_TRUST_DOMAIN'])
})

void t.test('interop – our client against openssl s_server: the server\'s SPIFFE ID decides, not its hostname', { skip: OPENSSL_MISSING }, async t => {
  const [cert, key] = files('s_server', caA.issueSvid('spiffe://td-a.test/server'))
  const port = await freePort()
  const server = spawn('openssl', ['s_server', '-accept', `127.0.0.1:${port}`, '-cert', cert, '-key', key, '-naccept', '2', '-www'], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => server.kill())
  await new Promise<void>(resolve => server.stdout.on('data', (chunk: Buffer) => { if (chunk.toString().includes('ACCEPT')) resolve() }))
  const attempt = async (expected: string): Promise<string> => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: caA.certPem, servername: 'not-a-name-in-the-cert', checkServerIdentity: spiffeCheckServerIdentity(bundles, expected) })
    try {
      await once(socket, 'secureConnect')
      return 'connected'
    } catch (err) {
      return (err as { code: string }).code
    } finally {
      socket.destroy()
    }
  }
  t.equal(await attempt('spiffe://td-a.test/server'), 'connected')
  t.equal(await attempt('spiffe://td-a.test/other'), 'ERR_X509_SVID_ID_MISMATCH')
})

async function freePort (): Promise<number> {
  const probe = net.createServer().listen(0, '127.0.0.1')
  await once(probe, 'listening')
  const { port } = probe.address() as AddressInfo
  probe.close()
  await once(probe, 'close')
  return port
}
