/**
 * The device's calls after attestation against stand-ins for SPIRE's Entry and SVID services
 * (fixtures/fake-spire-server.ts): the agent X509-SVID goes as the client certificate; SPIRE's refusals keep their
 * message (PermissionDenied → ERR_UPSTREAM_DENIED, a batch item's NotFound → ERR_UPSTREAM_FAILED); a silent server
 * is ERR_UPSTREAM_TIMEOUT; a batch answer of the wrong shape is ERR_UPSTREAM_PROTOCOL; an SVID for another ID than the
 * entry's is ERR_ENTRY_SVID_INVALID.
 */
import t from 'tap'
import { status } from '@grpc/grpc-js'
import type { ServerUnaryCall, sendUnaryData } from '@grpc/grpc-js'
import { fetchAuthorizedEntries, newDeviceCa, newEntrySvid, upstreamServer } from '../../../agent/upstream'
import type { AgentSvid, AuthorizedEntry, UpstreamServer } from '../../../agent/upstream'
import { EntryService, SvidClientService } from '../../../agent/spire-api/grpc-proto'
import { parseSpiffeId, parseTrustDomain } from '../../../spiffe/id'
import { AGENT_ID, TRUST_DOMAIN, csrKey, startFakeServices } from './fixtures/fake-spire-server'
import type { FakeSpireServer } from './fixtures/fake-spire-server'
import { createTestCa } from '../../../certs-test'
import type { TestCa } from '../../../certs-test'

type Handler = (call: ServerUnaryCall<{ params?: Array<{ entry_id: string, csr: Buffer }> }, unknown>, callback: sendUnaryData<unknown>) => void

const DEVICE_ID = `spiffe://${TRUST_DOMAIN}/device/SN-1`
const entry: AuthorizedEntry = { id: 'e-device', spiffeId: DEVICE_ID, parentId: AGENT_ID, downstream: true }
const serverOf = (fake: FakeSpireServer): UpstreamServer => upstreamServer(fake.address, parseTrustDomain(TRUST_DOMAIN), fake.bundlePem)
const agentOf = (ca: TestCa): AgentSvid => {
  const svid = ca.issueSvid(AGENT_ID)
  return { id: parseSpiffeId(AGENT_ID), chain: svid.chain, key: svid.key, expiresAt: new Date(svid.leaf.validTo), reattestable: true }
}
const failure = async (work: Promise<unknown>): Promise<unknown> => await work.then(() => new Error('succeeded, but should have failed'), (err: unknown) => err)

void t.test('upstream calls – the agent SVID is the client certificate; a refusal keeps SPIRE\'s message', async t => {
  const fake = await startFakeServices(t, () => [[EntryService(), {
    GetAuthorizedEntries: ((_call, callback) => {
      callback({ code: status.PERMISSION_DENIED, details: 'authorization denied for method /spire.api.server.entry.v1.Entry/GetAuthorizedEntries' })
    }) satisfies Handler
  }]], { requireClientCertificate: true })
  // The handshake needs our certificate: without it the call could not reach the handler that refuses it.
  t.match(await failure(fetchAuthorizedEntries(serverOf(fake), agentOf(fake.ca))), {
    code: 'ERR_UPSTREAM_DENIED',
    message: `GetAuthorizedEntries on SPIRE server ${fake.address} was refused: authorization denied for method /spire.api.server.entry.v1.Entry/GetAuthorizedEntries`
  })
  const stranger = agentOf(createTestCa(TRUST_DOMAIN))
  t.match(await failure(fetchAuthorizedEntries(serverOf(fake), stranger)), { code: 'ERR_UPSTREAM_UNREACHABLE' }, 'a certificate the server does not trust fails the handshake')
})

void t.test('upstream calls – BatchNewX509SVID: an item\'s status, a wrong shape, an SVID for another ID', async t => {
  const answers: Array<[string, (ca: TestCa, csr: Buffer) => unknown, object]> = [
    ['NotFound for the entry', () => ({ results: [{ status: { code: status.NOT_FOUND, message: 'entry not found or not authorized' } }] }),
      { code: 'ERR_UPSTREAM_FAILED', message: /BatchNewX509SVID for entry e-device .* failed \(NOT_FOUND\): entry not found or not authorized$/ }],
    ['no result', () => ({ results: [] }), { code: 'ERR_UPSTREAM_PROTOCOL', message: /0 results for one request/ }],
    ['OK without an SVID', () => ({ results: [{ status: { code: 0, message: 'OK' } }] }), { code: 'ERR_UPSTREAM_PROTOCOL', message: /an OK result without an X509-SVID/ }],
    ['an SVID for another ID', (ca, csr) => {
      const other = `spiffe://${TRUST_DOMAIN}/someone-else`
      const svid = ca.issueSvid(other, { override: { publicKey: csrKey(csr) } })
      return { results: [{ status: { code: 0, message: 'OK' }, svid: { cert_chain: svid.chain, id: { trust_domain: TRUST_DOMAIN, path: '/someone-else' }, expires_at: 0 } }] }
    }, { code: 'ERR_ENTRY_SVID_INVALID', message: /names spiffe:\/\/fleet\.example\/someone-else, not the entry's spiffe:\/\/fleet\.example\/device\/SN-1/ }]
  ]
  for (const [what, answer, expected] of answers) {
    const fake = await startFakeServices(t, ca => [[SvidClientService(), {
      BatchNewX509SVID: ((call, callback) => { callback(null, answer(ca, call.request.params?.[0]?.csr ?? Buffer.alloc(0))) }) satisfies Handler
    }]])
    t.match(await failure(newEntrySvid(serverOf(fake), agentOf(fake.ca), entry)), expected, what)
  }
})

void t.test('upstream calls – a server that does not answer NewDownstreamX509CA in time is ERR_UPSTREAM_TIMEOUT', async t => {
  const fake = await startFakeServices(t, () => [[SvidClientService(), { NewDownstreamX509CA: () => {} }]])
  const downstream = { ...agentOf(fake.ca), entryId: entry.id }
  t.match(await failure(newDeviceCa(serverOf(fake), downstream, { timeoutMs: 300 })), {
    code: 'ERR_UPSTREAM_TIMEOUT',
    message: `NewDownstreamX509CA on SPIRE server ${fake.address} did not finish in time`
  })
})
