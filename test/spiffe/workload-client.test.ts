import t from 'tap'
import { sign, verify, X509Certificate } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client, credentials, Metadata } from '@grpc/grpc-js'
import { verifyX509Svid } from '../../spiffe/x509-svid'
import { validateJwtSvid } from '../../spiffe/jwt-svid'
import { WorkloadClient, workloadEndpoint } from '../../spiffe/workload-client'
import type { X509SvidResponseParsed } from '../../spiffe/workload-client'
import { workloadApiMethods } from '../../spiffe/workload-proto'
import { FEDERATED_TD, startStandIn, TD, WORKLOAD_ID } from '../helpers/workload-stand-in'
import type { StandIn } from '../helpers/workload-stand-in'

const dir = mkdtempSync(join(tmpdir(), 'chaperone-workload-'))
let standIn: StandIn
let client: WorkloadClient
t.before(async () => {
  standIn = await startStandIn(dir)
  client = new WorkloadClient(standIn.address)
})
t.teardown(async () => {
  client.close()
  await standIn.close()
  rmSync(dir, { recursive: true, force: true })
})

void t.test('workload client – parses the X509-SVID, its key and bundles', async t => {
  const { svids, federatedBundles } = await client.fetchX509Svid()
  t.equal(svids.length, 1)
  const [svid] = svids
  t.match(svid, { spiffeId: WORKLOAD_ID, hint: 'internal' })
  t.equal(verifyX509Svid(svid.chain, svid.bundle).toString(), WORKLOAD_ID, 'the chain verifies against the bundle it came with')
  t.equal(svid.bundle.trustDomain.name, TD)
  const signature = sign('sha256', Buffer.from('proof'), svid.key)
  t.ok(verify('sha256', Buffer.from('proof'), new X509Certificate(svid.chain[0]).publicKey, signature), 'the key is the leaf\'s')
  t.same([...federatedBundles.keys()], [FEDERATED_TD])
  t.ok(federatedBundles.get(FEDERATED_TD)?.hasAuthority(standIn.federatedCa.cert))

  const bundles = await client.fetchX509Bundles()
  t.same([...bundles.keys()].sort(), [TD, FEDERATED_TD])
  t.ok(bundles.get(TD)?.hasAuthority(standIn.ca.cert))
})

void t.test('workload client – a JWT-SVID validates against the fetched JWT bundles, locally and by the agent', async t => {
  const svids = await client.fetchJwtSvid(['spiffe://td-a.test/db', 'other'])
  t.match(svids, [{ spiffeId: WORKLOAD_ID, hint: 'internal', token: /^ey/ }])
  const bundles = await client.fetchJwtBundles()
  t.same([...bundles.keys()], [TD])
  const local = await validateJwtSvid(svids[0].token, { getJwtBundle: td => bundles.get(td.name) }, 'other')
  t.equal(local.id.toString(), WORKLOAD_ID)

  const remote = await client.validateJwtSvid(svids[0].token, 'spiffe://td-a.test/db')
  t.equal(remote.spiffeId, WORKLOAD_ID)
  t.match(remote.claims, { sub: WORKLOAD_ID, aud: ['spiffe://td-a.test/db', 'other'], exp: Number }, 'claims come back as plain JSON')
  await t.rejects(client.validateJwtSvid(svids[0].token, 'nobody'), { code: 'ERR_WORKLOAD_API_INVALID_REQUEST' })
  await t.rejects(client.fetchJwtSvid([]), { code: 'ERR_WORKLOAD_API_INVALID_REQUEST', message: /audience/ })
})

void t.test('workload client – watch gets every update until cancelled', async t => {
  const updates: X509SvidResponseParsed[] = []
  const errors: Error[] = []
  const first = standIn.svid
  let cancel = (): void => {}
  await new Promise<void>(resolve => {
    cancel = client.watchX509Svids(update => {
      updates.push(update)
      if (updates.length === 1) standIn.rotate()
      else resolve()
    }, err => errors.push(err))
  })
  cancel()
  t.equal(updates.length, 2)
  t.same(updates[0].svids[0].chain[0], first.chain[0])
  t.same(updates[1].svids[0].chain[0], standIn.svid.chain[0], 'the second message carries the rotated SVID')
  t.not(first.leaf.serialNumber, standIn.svid.leaf.serialNumber)
  await new Promise(resolve => setTimeout(resolve, 50))
  t.same(errors, [], 'cancelling is not an error')
})

void t.test('workload client – every call carries the workload.spiffe.io header', async t => {
  const before = standIn.headerless
  await client.fetchX509Svid()
  await client.fetchJwtSvid(['x'])
  t.equal(standIn.headerless, before, 'the stand-in never saw a request without it')

  // A bare call without the header is refused: the stand-in checks it, so the test above means something.
  const bare = new Client(workloadEndpoint(standIn.address), credentials.createInsecure())
  t.teardown(() => bare.close())
  const m = workloadApiMethods().FetchJWTSVID
  const refused = await new Promise<{ code?: number }>(resolve => {
    bare.makeUnaryRequest(m.path, m.requestSerialize, m.responseDeserialize, { audience: ['x'] }, new Metadata(), {}, err => resolve(err ?? {}))
  })
  t.equal(refused.code, 3, 'INVALID_ARGUMENT')
  t.equal(standIn.headerless, before + 1)
})

void t.test('workload client – gRPC failures become ChaperoneErrors that say what to check', async t => {
  standIn.deny = true
  t.teardown(() => { standIn.deny = false })
  const denied = { code: 'ERR_WORKLOAD_API_DENIED', message: /no identity issued.*registration entry.*selectors/, cause: { code: 7 } }
  await t.rejects(client.fetchX509Svid(), denied)
  await t.rejects(client.fetchJwtSvid(['x']), denied)
  await t.rejects(client.fetchJwtBundles(), denied)
  const errors: Error[] = []
  await new Promise<void>(resolve => client.watchX509Svids(() => t.fail('no update when denied'), err => {
    errors.push(err)
    resolve()
  }))
  t.match(errors, [denied], 'a watch reports the denial once')

  const missing = join(dir, 'no-agent.sock')
  const nowhere = new WorkloadClient(`unix://${missing}`)
  t.teardown(() => nowhere.close())
  await t.rejects(nowhere.fetchX509Svid(), { code: 'ERR_WORKLOAD_API_UNAVAILABLE', message: `cannot reach the Workload API at unix://${missing}: no socket there; the agent may not be running, or its socket is elsewhere`, cause: { code: 14 } })
})

void t.test('workload endpoint – accepts the standard\'s forms and names what is wrong', async t => {
  const good: Array<[string, string]> = [
    ['unix:///run/chaperone/workload.sock', 'unix:///run/chaperone/workload.sock'],
    ['unix:/run/x.sock', 'unix:///run/x.sock'],
    ['/run/x.sock', 'unix:///run/x.sock'],
    ['tcp://127.0.0.1:8081', 'ipv4:127.0.0.1:8081'],
    ['tcp://[::1]:8081', 'ipv6:[::1]:8081']
  ]
  for (const [address, target] of good) t.equal(workloadEndpoint(address), target, address)
  const bad: Array<[string, RegExp]> = [
    ['tcp://localhost:8081', /IP address/],
    ['tcp://127.0.0.1', /port/],
    ['tcp://127.0.0.1:80/path', /no path/],
    ['unix://host/run/x.sock', /no authority/],
    ['unix:relative.sock', /absolute/],
    ['unix:///run/x.sock?x=1', /query/],
    ['http://127.0.0.1:80', /unsupported scheme/],
    ['run/x.sock', /not a URI/]
  ]
  for (const [address, reason] of bad) t.throws(() => workloadEndpoint(address), { code: 'ERR_WORKLOAD_API_ADDRESS', message: reason }, address)

  const saved = process.env.SPIFFE_ENDPOINT_SOCKET
  t.teardown(() => { process.env.SPIFFE_ENDPOINT_SOCKET = saved })
  process.env.SPIFFE_ENDPOINT_SOCKET = 'unix:///from/env.sock'
  t.equal(workloadEndpoint(), 'unix:///from/env.sock')
  delete process.env.SPIFFE_ENDPOINT_SOCKET
  t.throws(() => workloadEndpoint(), { code: 'ERR_WORKLOAD_API_ADDRESS', message: /SPIFFE_ENDPOINT_SOCKET/ })
})
