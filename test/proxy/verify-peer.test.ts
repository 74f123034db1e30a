import t from 'tap'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import * as tls from 'node:tls'
import { createTestCa } from '../../certs-test/pki'
import type { TestCa } from '../../certs-test/pki'
import { BundleSet } from '../../spiffe/bundle-set'
import { parseTrustDomain } from '../../spiffe/id'
import { SpiffeBundle } from '../../spiffe/spiffe-bundle'
import { X509Bundle } from '../../spiffe/x509-bundle'
import type { ListenerConfig } from '../../proxy/config'
import { SidecarMetrics } from '../../proxy/metrics'
import type { SidecarServices } from '../../proxy/services'
import { PeerChains } from '../../proxy/steps/peer-chains'
import { verifyPeer } from '../../proxy/steps/verify-peer'

// The inbound peer check on real TLS connections, resumed ones included: a resumed session carries only the
// peer's leaf, and the sidecar still verifies the whole chain to the bundle in force at that moment.
// (The services are a stub holding what verifyPeer reads: the bundles, the metrics and the refusal log.)

const TD = 'td-a.test'
const bundlesOf = (ca: TestCa): BundleSet => new BundleSet([new SpiffeBundle(parseTrustDomain(TD), { x509: new X509Bundle(parseTrustDomain(TD), [ca.certDer]) })])

const ca = createTestCa(TD)
const client = ca.createIntermediate().issueSvid(`spiffe://${TD}/client`) // leaf and intermediate: a chain to remember
const server = ca.issueSvid(`spiffe://${TD}/server`)
const refusals: Array<Record<string, unknown>> = []
const context = { bundles: bundlesOf(ca) }
const services = {
  identity: { current: { context } },
  metrics: new SidecarMetrics(),
  limitedLog: { warn: (_key: string, fields: Record<string, unknown>) => { refusals.push(fields) } },
  peerChains: new PeerChains()
} as unknown as SidecarServices
const listener = { name: 'inbound-1', direction: 'inbound' } as unknown as ListenerConfig

/** One connection with the client SVID (and `session`, to resume): what the server side saw, and the client's newest session. */
async function connect (port: number, seen: Array<{ resumed: boolean, peer: string | undefined }>, session?: Buffer): Promise<Buffer | undefined> {
  const socket = tls.connect({ host: '127.0.0.1', port, cert: client.chainPem, key: client.keyPem, rejectUnauthorized: false, ...(session === undefined ? {} : { session }) })
  let newest: Buffer | undefined
  socket.on('session', (s: Buffer) => { newest = s }).on('error', () => { socket.destroy() }).resume()
  const before = seen.length
  await once(socket, 'close')
  while (seen.length === before) await new Promise(resolve => setTimeout(resolve, 10))
  return newest
}

void t.test('verify-peer – a resumed session is verified again, with the chain of its full handshake, to the bundle in force now', async t => {
  const seen: Array<{ resumed: boolean, peer: string | undefined }> = []
  const listening = tls.createServer({ cert: server.chainPem, key: server.keyPem, requestCert: true, rejectUnauthorized: false }, socket => {
    seen.push({ resumed: socket.isSessionReused(), peer: verifyPeer(services, listener, socket)?.id.toString() })
    socket.end('bye')
  }).listen(0, '127.0.0.1')
  await once(listening, 'listening')
  t.teardown(() => { listening.close() })
  const { port } = listening.address() as AddressInfo

  const session = await connect(port, seen)
  t.ok(session, 'the client got a session to resume')
  await connect(port, seen, session)
  t.same(seen, [{ resumed: false, peer: `spiffe://${TD}/client` }, { resumed: true, peer: `spiffe://${TD}/client` }],
    'resumed, only the leaf in the session: verified with the intermediate remembered from the full handshake')

  context.bundles = bundlesOf(createTestCa(TD)) // the trust domain's bundle now holds another root
  await connect(port, seen, session)
  t.same(seen[2], { resumed: true, peer: undefined }, 'the same session, resumed, is refused under the new bundle')
  t.match(refusals, [{ event: 'handshake_failed', listener: 'inbound-1', reason: /^ERR_X509_SVID_/ }])
})
