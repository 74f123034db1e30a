import t from 'tap'
import { once } from 'node:events'
import * as tls from 'node:tls'
import type { AddressInfo } from 'node:net'
import { createTestCa } from '../../certs-test/pki'
import type { TestCa, TestSvid } from '../../certs-test/pki'
import { parseTrustDomain } from '../../spiffe/id'
import { X509Bundle } from '../../spiffe/x509-bundle'
import { SpiffeBundle } from '../../spiffe/spiffe-bundle'
import { BundleSet } from '../../spiffe/bundle-set'
import { spiffeCheckServerIdentity, verifyTlsPeer, peerChainOf } from '../../spiffe/tls-peer'
import type { ExpectedPeer } from '../../spiffe/tls-peer'

// Real TLS over loopback: OpenSSL does the handshake, our checks decide who the peer is.
const caA = createTestCa('td-a.test')
const intermediateA = caA.createIntermediate()
const caB = createTestCa('td-b.test')
const bundleSet = new BundleSet([caA, caB].map(ca => {
  const td = parseTrustDomain(ca.trustDomain)
  return new SpiffeBundle(td, { x509: new X509Bundle(td, [ca.certDer]) })
}))
/** Both trust domains' roots, as OpenSSL's `ca` would hold them: exactly the merge our checks must not be fooled by. */
const allRootsPem = caA.certPem + caB.certPem

interface Outcome { clientError?: string, serverSaw?: string, serverError?: string }

/** One mTLS connection: the server verifies its client with verifyTlsPeer, the client its server with spiffeCheckServerIdentity. */
async function connect (server: TestSvid, client: TestSvid | undefined, expectServer?: ExpectedPeer): Promise<Outcome> {
  const outcome: Outcome = {}
  const listener = tls.createServer({ key: server.keyPem, cert: server.chainPem, ca: allRootsPem, requestCert: true, rejectUnauthorized: false }, socket => {
    try {
      outcome.serverSaw = verifyTlsPeer(socket, bundleSet).toString()
      socket.end('hello')
    } catch (err) {
      outcome.serverError = (err as { code?: string }).code
      socket.destroy()
    }
  })
  listener.listen(0, '127.0.0.1')
  await once(listener, 'listening')
  const { port } = listener.address() as AddressInfo
  const socket = tls.connect({
    host: '127.0.0.1',
    port,
    ca: allRootsPem,
    ...(client === undefined ? {} : { key: client.keyPem, cert: client.chainPem }),
    checkServerIdentity: spiffeCheckServerIdentity(bundleSet, expectServer)
  })
  try {
    socket.resume()
    await once(socket, 'end')
  } catch (err) {
    outcome.clientError = (err as { code?: string }).code
  } finally {
    socket.destroy()
    listener.close()
    await once(listener, 'close')
  }
  return outcome
}

function svid (ca: TestCa, id: string): TestSvid {
  return ca.issueSvid(id)
}

void t.test('tls – both ends learn each other\'s SPIFFE ID over real mTLS, also through an intermediate', async t => {
  const outcome = await connect(svid(intermediateA, 'spiffe://td-a.test/server'), svid(caA, 'spiffe://td-a.test/client'), 'spiffe://td-a.test/server')
  t.same(outcome, { serverSaw: 'spiffe://td-a.test/client' })
})

void t.test('tls – the client rejects a server whose ID is not the expected one', async t => {
  const outcome = await connect(svid(caA, 'spiffe://td-a.test/impostor'), svid(caA, 'spiffe://td-a.test/client'), 'spiffe://td-a.test/server')
  t.equal(outcome.clientError, 'ERR_X509_SVID_ID_MISMATCH')
  const byPredicate = await connect(svid(caA, 'spiffe://td-a.test/impostor'), svid(caA, 'spiffe://td-a.test/client'), id => id.path.startsWith('/server'))
  t.equal(byPredicate.clientError, 'ERR_X509_SVID_ID_MISMATCH')
})

void t.test('tls – a server claiming trust domain A with a certificate from B\'s CA is rejected, though OpenSSL trusted the chain', async t => {
  const outcome = await connect(svid(caB, 'spiffe://td-a.test/server'), svid(caA, 'spiffe://td-a.test/client'))
  t.equal(outcome.clientError, 'ERR_X509_SVID_WRONG_TRUST_DOMAIN')
  t.equal(outcome.serverSaw, undefined, 'the client never completed its side')
})

void t.test('tls – the server rejects a client from the wrong trust domain\'s CA and a client without a certificate', async t => {
  const forged = await connect(svid(caA, 'spiffe://td-a.test/server'), svid(caB, 'spiffe://td-a.test/client'))
  t.equal(forged.serverError, 'ERR_X509_SVID_WRONG_TRUST_DOMAIN')
  const anonymous = await connect(svid(caA, 'spiffe://td-a.test/server'), undefined)
  t.equal(anonymous.serverError, 'ERR_X509_SVID_MISSING')
  const otherDomain = await connect(svid(caA, 'spiffe://td-a.test/server'), svid(caB, 'spiffe://td-b.test/client'))
  t.same(otherDomain, { serverSaw: 'spiffe://td-b.test/client' }, 'a genuine peer of a federated trust domain is accepted')
})

void t.test('tls – peerChainOf follows issuer links and stops at a self-signed root', async t => {
  const leaf = { raw: Buffer.from('leaf') } as unknown as tls.DetailedPeerCertificate
  const root = { raw: Buffer.from('root') } as unknown as tls.DetailedPeerCertificate
  Object.assign(leaf, { issuerCertificate: root })
  Object.assign(root, { issuerCertificate: root })
  t.same(peerChainOf(leaf).map(b => b.toString()), ['leaf', 'root'])
  t.same(peerChainOf({} as tls.PeerCertificate), [], 'no certificate, no chain')
})
