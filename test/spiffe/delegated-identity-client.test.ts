// The Delegated Identity API client against an in-process STAND-IN server built from the same .proto
// (test/helpers/delegated-identity-stand-in.ts); SPIRE's real agent is in test/interop/spire-delegated-identity.interop.ts.
import t from 'tap'
import type { Test } from 'tap'
import { sign, verify, X509Certificate } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { status } from '@grpc/grpc-js'
import protobuf from 'protobufjs'
import { createTestCa } from '../../certs-test'
import { DelegatedIdentityClient, delegatedIdentityEndpoint } from '../../spiffe/delegated-identity-client'
import type { DelegatedX509SvidUpdate } from '../../spiffe/delegated-identity-client'
import { delegatedIdentityApiError } from '../../spiffe/delegated-identity-errors'
import { parseX509SvidsResponse } from '../../spiffe/delegated-identity-messages'
import { delegatedIdentityMethods } from '../../spiffe/delegated-identity-proto'
import type { JwtBundle } from '../../spiffe/jwt-bundle'
import { validateJwtSvid } from '../../spiffe/jwt-svid'
import { verifyX509Svid } from '../../spiffe/x509-svid'
import { X509Bundle } from '../../spiffe/x509-bundle'
import { parseTrustDomain } from '../../spiffe/id'
import { APP_ID, FEDERATED_TD, OTHER_TD, startDelegatedStandIn, TD, x509SvidsMessage } from '../helpers/delegated-identity-stand-in'
import type { DelegatedStandIn } from '../helpers/delegated-identity-stand-in'

const PID = { pid: 4242 }

function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-delegated-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

async function stand (t: Test): Promise<{ standIn: DelegatedStandIn, client: DelegatedIdentityClient }> {
  const standIn = await startDelegatedStandIn(tempDir(t))
  const client = new DelegatedIdentityClient(standIn.address)
  t.teardown(async () => {
    client.close()
    await standIn.close(true)
  })
  return { standIn, client }
}

/** The first `count` updates and errors of a subscription, then it is cancelled. */
async function collect<U> (subscribe: (onUpdate: (u: U) => void, onError: (e: Error) => void) => () => void, count: number): Promise<Array<U | Error>> {
  const seen: Array<U | Error> = []
  return await new Promise(resolve => {
    const cancel = subscribe(u => add(u), e => add(e))
    function add (item: U | Error): void {
      seen.push(item)
      if (seen.length === count) {
        cancel()
        resolve(seen)
      }
    }
  })
}

void t.test('delegated client – PID mode: the workload\'s SVID with a key matching its leaf, and what it federates with', async t => {
  const { standIn, client } = await stand(t)
  const [update] = await collect<DelegatedX509SvidUpdate>((u, e) => client.subscribeToX509Svids(PID, u, e), 1) as DelegatedX509SvidUpdate[]
  t.equal(update.svids.length, 1)
  const [svid] = update.svids
  t.match(svid, { spiffeId: APP_ID, hint: 'internal' })
  t.same(svid.chain, standIn.workloads.get('pid:4242')?.svids[0].chain)
  const signature = sign('sha256', Buffer.from('proof'), svid.key)
  t.ok(verify('sha256', Buffer.from('proof'), new X509Certificate(svid.chain[0]).publicKey, signature), 'the PKCS#8 key is the leaf\'s')
  t.equal(verifyX509Svid(svid.chain, new X509Bundle(parseTrustDomain(TD), [standIn.ca.cert])).toString(), APP_ID)
  t.same(update.federatesWith, [FEDERATED_TD], 'federates_with as trust domain names')
  t.equal(standIn.calls.x509Svids, 1)
})

void t.test('delegated client – selector mode, and a workload with no entry gets an update with no SVIDs', async t => {
  const { standIn, client } = await stand(t)
  standIn.workloads.set('unix:uid:1000,unix:gid:1000', { svids: [standIn.ca.issueSvid(`spiffe://${TD}/other`)], federatesWith: [] })
  const selectors = [{ type: 'unix', value: 'uid:1000' }, { type: 'unix', value: 'gid:1000' }]
  const [bySelectors] = await collect<DelegatedX509SvidUpdate>((u, e) => client.subscribeToX509Svids({ selectors }, u, e), 1) as DelegatedX509SvidUpdate[]
  t.same(bySelectors.svids.map(s => s.spiffeId), [`spiffe://${TD}/other`])
  const [none] = await collect<DelegatedX509SvidUpdate>((u, e) => client.subscribeToX509Svids({ pid: 999 }, u, e), 1) as DelegatedX509SvidUpdate[]
  t.same(none, { svids: [], federatesWith: [] })
})

void t.test('delegated client – bundles keyed by trust domain name; JWT bundles; JWT-SVIDs validate against them', async t => {
  const { standIn, client } = await stand(t)
  const [bundles] = await collect<Map<string, X509Bundle>>((u, e) => client.subscribeToX509Bundles(u, e), 1) as Array<Map<string, X509Bundle>>
  t.same([...bundles.keys()].sort(), [TD, FEDERATED_TD, OTHER_TD])
  t.ok(bundles.get(FEDERATED_TD)?.hasAuthority(standIn.federatedCa.cert))
  const [jwtBundles] = await collect<Map<string, JwtBundle>>((u, e) => client.subscribeToJwtBundles(u, e), 1) as Array<Map<string, JwtBundle>>
  t.same([...jwtBundles.keys()], [TD])

  const svids = await client.fetchJwtSvids(PID, ['spiffe://td-a.test/db'])
  t.match(svids, [{ spiffeId: APP_ID, hint: 'internal', token: /^ey/, expiresAt: Date, issuedAt: Date }])
  t.ok(svids[0].expiresAt.getTime() > Date.now())
  const validated = await validateJwtSvid(svids[0].token, { getJwtBundle: td => jwtBundles.get(td.name) }, 'spiffe://td-a.test/db')
  t.equal(validated.id.toString(), APP_ID)
  await t.rejects(client.fetchJwtSvids(PID, []), {
    code: 'ERR_DELEGATED_IDENTITY_API_INVALID_REQUEST',
    message: `the agent at ${standIn.address} rejected FetchJWTSVIDs: audience must be specified: pass at least one audience`
  })
  await t.rejects(client.fetchJwtSvids({ pid: 999 }, ['x']), { code: 'ERR_DELEGATED_IDENTITY_API_DENIED', message: /or no identity was issued to the workload named/ })
})

void t.test('delegated client – a workload named wrongly is refused before anything is sent', async t => {
  const { standIn, client } = await stand(t)
  const noop = (): void => {}
  const cases: Array<[unknown, RegExp]> = [
    [{}, /by a pid or by selectors, not both and not neither/],
    [{ pid: 1, selectors: [] }, /not both/],
    [{ pid: 0 }, /positive 32-bit integer/],
    [{ pid: 2 ** 31 }, /positive 32-bit integer/],
    [{ pid: 1.5 }, /positive 32-bit integer/],
    [{ selectors: [] }, /non-empty list/],
    [{ selectors: [{ type: 'unix:uid', value: '0' }] }, /selector 0 needs a type without ':'/],
    [{ selectors: [{ type: 'unix', value: '' }] }, /selector 0 \(unix\) needs a value/]
  ]
  for (const [workload, message] of cases) {
    t.throws(() => client.subscribeToX509Svids(workload as { pid: number }, noop, noop), { code: 'ERR_DELEGATED_IDENTITY_API_INVALID_REQUEST', message }, JSON.stringify(workload))
  }
  await t.rejects(client.fetchJwtSvids({ selectors: [] }, ['a']), { code: 'ERR_DELEGATED_IDENTITY_API_INVALID_REQUEST' })
  t.equal(standIn.calls.x509Svids + standIn.calls.jwtSvids, 0, 'the agent was asked nothing')
})

void t.test('delegated client – a malformed message is rejected naming the defect, and the stream goes on', async t => {
  const { standIn, client } = await stand(t)
  const good = x509SvidsMessage(standIn.workloads.get('pid:4242')) as { x509_svids: Array<{ x509_svid: { id: object, cert_chain: Buffer[] }, x509_svid_key: Buffer }>, federates_with: string[] }
  const svid = good.x509_svids[0]
  const other = standIn.ca.issueSvid(`spiffe://${TD}/intruder`)
  const defects: Array<[object, RegExp]> = [
    [{ ...good, x509_svids: [{ ...svid, x509_svid: null }] }, /X509-SVID 0 \(no ID\): x509_svid is missing/],
    [{ ...good, x509_svids: [{ ...svid, x509_svid: { ...svid.x509_svid, id: null } }] }, /its SPIFFE ID is missing/],
    [{ ...good, x509_svids: [{ ...svid, x509_svid: { ...svid.x509_svid, cert_chain: [] } }] }, /empty certificate chain/],
    [{ ...good, x509_svids: [{ ...svid, x509_svid: { ...svid.x509_svid, cert_chain: [Buffer.concat([other.chain[0], other.chain[0]])] } }] }, /cert_chain\[0\] holds 2 certificates, not one/],
    [{ ...good, x509_svids: [{ ...svid, x509_svid: { ...svid.x509_svid, cert_chain: [Buffer.from('not DER')] } }] }, /X509-SVID 0 \(td-a\.test\/app\)/],
    [{ ...good, x509_svids: [{ ...svid, x509_svid: { ...svid.x509_svid, cert_chain: other.chain } }] }, /its leaf certificate is spiffe:\/\/td-a\.test\/intruder's, not spiffe:\/\/td-a\.test\/app's/],
    [{ ...good, x509_svids: [{ ...svid, x509_svid_key: other.key.export({ type: 'pkcs8', format: 'der' }) }] }, /the private key does not match the leaf certificate/],
    [{ ...good, x509_svids: [{ ...svid, x509_svid: { ...svid.x509_svid, id: { trust_domain: TD, path: '' } } }] }, /has no path, so it names no workload/],
    [{ ...good, federates_with: ['spiffe://Bad TD'] }, /federates_with entry "spiffe:\/\/Bad TD"/]
  ]
  const seen: Array<DelegatedX509SvidUpdate | Error> = []
  const cancel = client.subscribeToX509Svids(PID, u => seen.push(u), e => seen.push(e))
  t.teardown(cancel)
  while (seen.length === 0) await new Promise(resolve => setTimeout(resolve, 10))
  for (const [message] of defects) standIn.sendRaw('SubscribeToX509SVIDs', message)
  standIn.pushSvids()
  while (seen.length < defects.length + 2) await new Promise(resolve => setTimeout(resolve, 10))
  defects.forEach(([, message], i) => {
    t.match(seen[i + 1], { code: 'ERR_DELEGATED_IDENTITY_API_RESPONSE_INVALID', message: new RegExp(`^the Delegated Identity API at ${standIn.address} sent an invalid `) }, `defect ${i}`)
    t.match((seen[i + 1] as Error).message, message, `defect ${i} named`)
  })
  t.match(seen.at(-1), { svids: [{ spiffeId: APP_ID }] }, 'and the next good state still arrives on the same stream')
  t.equal(standIn.calls.x509Svids, 1)

  const bundleItems: Array<Map<string, X509Bundle> | Error> = []
  t.teardown(client.subscribeToX509Bundles(u => bundleItems.push(u), e => bundleItems.push(e)))
  while (bundleItems.length === 0) await new Promise(resolve => setTimeout(resolve, 10))
  standIn.sendRaw('SubscribeToX509Bundles', { ca_certificates: { 'spiffe://td-a.test': Buffer.from('junk') } })
  standIn.pushBundles()
  while (bundleItems.length < 3) await new Promise(resolve => setTimeout(resolve, 10))
  t.match(bundleItems[1], { code: 'ERR_DELEGATED_IDENTITY_API_RESPONSE_INVALID', message: /invalid bundle for "spiffe:\/\/td-a\.test": X\.509 bundle for td-a\.test: malformed DER/ })
  t.ok(bundleItems[2] instanceof Map, 'and the bundle stream goes on too')
})

void t.test('delegated client – gRPC failures name the reason', async t => {
  const { standIn, client } = await stand(t)
  standIn.deny = 'caller not configured as an authorized delegate'
  const [denied] = await collect((u, e) => client.subscribeToX509Svids(PID, u, e), 1)
  t.match(denied, {
    code: 'ERR_DELEGATED_IDENTITY_API_DENIED',
    message: `this process is not an authorized delegate of the agent at ${standIn.address}: add its SPIFFE ID to the agent's authorized_delegates (SPIRE) / authorizedDelegates (Chaperone) (the agent said: caller not configured as an authorized delegate)`
  })
  standIn.deny = 'no identity issued'
  const [noEntry] = await collect((u, e) => client.subscribeToX509Bundles(u, e), 1)
  t.match(noEntry, { code: 'ERR_DELEGATED_IDENTITY_API_DENIED', message: /not an authorized delegate .*: no registration entry matches this process \(uid \d+, gid \d+\), so it has no SPIFFE ID to authorize: register it, then add its SPIFFE ID/ })

  const missing = join(tempDir(t), 'none.sock')
  const away = new DelegatedIdentityClient(missing)
  t.teardown(() => away.close())
  const [unreachable] = await collect((u, e) => away.subscribeToJwtBundles(u, e), 1)
  t.match(unreachable, { code: 'ERR_DELEGATED_IDENTITY_API_UNAVAILABLE', message: new RegExp(`^cannot reach the Delegated Identity API at ${missing}: no socket there; the agent may not be running, or its admin socket is not enabled \\(SPIRE: admin_socket_path\\)`) })

  const fake = (code: status, details: string): Error => Object.assign(new Error(details), { code, details, metadata: undefined })
  t.match(delegatedIdentityApiError(fake(status.INTERNAL, 'workload attestation failed'), 'unix:///a.sock', 'SubscribeToX509SVIDs'),
    { code: 'ERR_DELEGATED_IDENTITY_API_FAILED', message: /could not attest this process to authorize it as a delegate/ })
  t.match(delegatedIdentityApiError(fake(status.INVALID_ARGUMENT, 'could not parse provided selectors'), 'unix:///a.sock', 'SubscribeToX509SVIDs'),
    { code: 'ERR_DELEGATED_IDENTITY_API_INVALID_REQUEST', message: /could not parse provided selectors: each selector needs a type and a value/ })
  t.match(delegatedIdentityApiError(fake(status.UNKNOWN, 'no such process'), 'unix:///a.sock', 'SubscribeToX509SVIDs'),
    { code: 'ERR_DELEGATED_IDENTITY_API_FAILED', message: 'Delegated Identity API SubscribeToX509SVIDs at unix:///a.sock failed: UNKNOWN (no such process)' })
})

void t.test('delegated client – bundles past gRPC\'s 4 MiB default arrive; the limit is an option', async t => {
  const { standIn, client } = await stand(t)
  // 5 MiB of authorities (the same certificate over and over: the bundle keeps one, but the message carries them all).
  const copies = Math.ceil(5 * 1024 * 1024 / standIn.otherCa.certDer.length)
  standIn.bundles.set(`spiffe://${OTHER_TD}`, Buffer.concat(Array.from({ length: copies }, () => standIn.otherCa.certDer)))
  const [large] = await collect<Map<string, X509Bundle>>((u, e) => client.subscribeToX509Bundles(u, e), 1)
  t.ok(large instanceof Map && large.get(OTHER_TD)?.hasAuthority(standIn.otherCa.cert), 'a 5 MiB message is accepted by default')
  const small = new DelegatedIdentityClient(standIn.address, { maxReceiveMessageBytes: 4096 })
  t.teardown(() => small.close())
  const [refused] = await collect((u, e) => small.subscribeToX509Bundles(u, e), 1)
  t.match(refused, { code: 'ERR_DELEGATED_IDENTITY_API_FAILED', message: /RESOURCE_EXHAUSTED/ })
})

void t.test('delegated client – the address: unix:// URI, a path, or $SPIRE_ADMIN_ENDPOINT_SOCKET; nothing else', async t => {
  t.equal(delegatedIdentityEndpoint('unix:///run/spire/admin.sock'), 'unix:///run/spire/admin.sock')
  t.equal(delegatedIdentityEndpoint('/run/spire/admin.sock'), 'unix:///run/spire/admin.sock')
  const saved = process.env.SPIRE_ADMIN_ENDPOINT_SOCKET
  t.teardown(() => { if (saved === undefined) delete process.env.SPIRE_ADMIN_ENDPOINT_SOCKET; else process.env.SPIRE_ADMIN_ENDPOINT_SOCKET = saved })
  process.env.SPIRE_ADMIN_ENDPOINT_SOCKET = 'unix:/tmp/env-admin.sock'
  const fromEnv = new DelegatedIdentityClient()
  t.equal(fromEnv.address, 'unix:///tmp/env-admin.sock')
  fromEnv.close()
  delete process.env.SPIRE_ADMIN_ENDPOINT_SOCKET
  t.throws(() => new DelegatedIdentityClient(), { code: 'ERR_DELEGATED_IDENTITY_API_ADDRESS', message: /set SPIRE_ADMIN_ENDPOINT_SOCKET/ })
  t.throws(() => new DelegatedIdentityClient('tcp://127.0.0.1:8081'), { code: 'ERR_DELEGATED_IDENTITY_API_ADDRESS', message: /unsupported scheme "tcp:"/ })
  t.throws(() => new DelegatedIdentityClient('relative.sock'), { code: 'ERR_DELEGATED_IDENTITY_API_ADDRESS', message: /not a URI/ })
})

void t.test('delegated client – close() ends the shared bundle stream; later calls throw ERR_DELEGATED_IDENTITY_API_CLOSED', async t => {
  const { client } = await stand(t)
  client.close()
  client.close()
  t.ok(client.closed)
  t.throws(() => client.subscribeToX509Bundles(() => {}, () => {}), { code: 'ERR_DELEGATED_IDENTITY_API_CLOSED', message: /was closed/ })
  await t.rejects(client.fetchJwtSvids(PID, ['a']), { code: 'ERR_DELEGATED_IDENTITY_API_CLOSED' })
})

void t.test('delegated client – the .proto\'s wire format is SPIRE\'s (spire-api-sdk: X509SVID cert_chain = 1, id = 2)', async t => {
  // The stand-in speaks our own .proto, so only bytes encoded from SPIRE's field numbers can catch a wrong one.
  const spire = protobuf.parse(`syntax = "proto3";
    message SPIFFEID { string trust_domain = 1; string path = 2; }
    message X509SVID { repeated bytes cert_chain = 1; SPIFFEID id = 2; int64 expires_at = 3; string hint = 4; }
    message X509SVIDWithKey { X509SVID x509_svid = 1; bytes x509_svid_key = 2; }
    message SubscribeToX509SVIDsResponse { repeated X509SVIDWithKey x509_svids = 1; repeated string federates_with = 2; }`, { keepCase: true }).root.lookupType('SubscribeToX509SVIDsResponse')
  const svid = createTestCa(TD).issueSvid(APP_ID)
  const bytes = Buffer.from(spire.encode(spire.fromObject({
    x509_svids: [{ x509_svid: { cert_chain: svid.chain, id: { trust_domain: TD, path: '/app' }, expires_at: 1, hint: 'h' }, x509_svid_key: svid.key.export({ type: 'pkcs8', format: 'der' }) }],
    federates_with: [`spiffe://${FEDERATED_TD}`]
  })).finish())
  const decoded = delegatedIdentityMethods().SubscribeToX509SVIDs.responseDeserialize(bytes) as Parameters<typeof parseX509SvidsResponse>[0]
  t.match(parseX509SvidsResponse(decoded, 'unix:///x'), { svids: [{ spiffeId: APP_ID, hint: 'h', chain: svid.chain }], federatesWith: [FEDERATED_TD] })
})
