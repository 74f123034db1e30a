/**
 * Chaperone devices under a Chaperone agent in the upstream role (`fleet:`), all real parts (TCP, TLS, gRPC, SQLite)
 * in one process: each device attests with its birth certificate (x509pop), gets a device CA, publishes its JWT key;
 * workloads on two devices trust each other's X509-SVIDs by the fleet's roots, and a JWT-SVID minted on one validates
 * on the other. Refused, each with its reason logged and counted: a birth certificate of another manufacturer, a
 * device nobody registered, a banned device, and calls without the right X509-SVID.
 */
import t from 'tap'
import { TestManufacturer } from '../../../certs-test'
import { WorkloadClient } from '../../../spiffe/workload-client'
import { verifyX509Svid } from '../../../spiffe/x509-svid'
import { waitFor } from '../../helpers/command'
import { status } from '@grpc/grpc-js'
import { FLEET_METHODS } from '../../../agent/fleet/fleet-authorization'
import { BundleService, EntryService, SvidClientService } from '../../../agent/spire-api/grpc-proto'
import { callFleetAnonymously, FLEET_TD, startFleetStand } from './fixtures/fleet-stand'
import type { LoggedAgent } from './fixtures/fleet-stand'

const AUDIENCE = 'fleet-app'

function workloadApi (device: LoggedAgent): WorkloadClient {
  return new WorkloadClient(`unix:${device.agent.config.socket}`)
}

async function failure (work: Promise<unknown>): Promise<{ code?: string, message?: string }> {
  return await work.then(() => ({ message: 'succeeded, but should have failed' }), (err: Error & { code?: string }) => err)
}

void t.test('fleet – two devices under a Chaperone fleet agent: one trust domain, X.509 and JWT', async t => {
  const fleet = await startFleetStand(t)
  const births = [fleet.maker.issueBirthCert('SN-F-0001'), fleet.maker.issueBirthCert('SN-F-0002')]
  const deviceIds = await Promise.all(births.map(async birth => await fleet.register(birth)))
  const [one, two] = await Promise.all(births.map(async (birth, i) => await fleet.startDevice(birth, `${deviceIds[i]}/app`)))

  const status = one.agent.ca.status()
  t.equal(status.upstreamName, `SPIRE server ${fleet.address}`, 'the device\'s CA is under the fleet agent')
  t.match(status.x509.find(a => a.state === 'active')?.subject, /OU=DOWNSTREAM-1/, 'named as SPIRE names a downstream CA')
  t.same(fleet.agent.store.agents.list().map(agent => agent.selectors.find(s => s.value.startsWith('subject:cn:'))?.value).sort(),
    ['subject:cn:SN-F-0001', 'subject:cn:SN-F-0002'], 'the fleet agent recorded both attestations with their selectors')

  const [fromOne, fromTwo] = await Promise.all([one, two].map(async device => (await workloadApi(device).fetchX509Svid()).svids[0]))
  t.equal(fromOne.chain.length, 2, 'a workload\'s chain: leaf, device CA')
  t.equal(verifyX509Svid(fromOne.chain, fleet.agent.ca.bundle()).toString(), `${deviceIds[0]}/app`, 'verifies to the fleet\'s roots')
  t.equal(verifyX509Svid(fromOne.chain, fromTwo.bundle).toString(), `${deviceIds[0]}/app`, 'and with device two\'s bundle')
  t.equal(verifyX509Svid(fromTwo.chain, fromOne.bundle).toString(), `${deviceIds[1]}/app`, 'and the other way')

  const [{ token }] = await workloadApi(one).fetchJwtSvid([AUDIENCE])
  const validated = await waitFor('device two to hold device one\'s JWT key (GetBundle every 5 s)', 30_000, async () =>
    await workloadApi(two).validateJwtSvid(token, AUDIENCE).catch(() => undefined))
  t.equal(validated.spiffeId, `${deviceIds[0]}/app`, 'a JWT-SVID from device one validates on device two')
  t.ok(fleet.agent.ca.bundle().jwt.size >= 1 && fleet.agent.store.ownBundle(fleet.agent.ca.bundle()).jwt.size >= 3, 'the fleet\'s bundle holds its key and both devices\'')
})

void t.test('fleet – refusals: another manufacturer, an unregistered device, a banned device, calls without the right SVID', async t => {
  const fleet = await startFleetStand(t)

  const foreign = new TestManufacturer({ name: 'Other Maker' }).issueBirthCert('SN-X-0001')
  await fleet.register(foreign)
  const refused = await failure(fleet.startDevice(foreign, 'spiffe://fleet.example/x/app'))
  t.match(refused, { code: 'ERR_NODE_ATTESTATION_DENIED', message: /certificate verification failed/ }, 'a birth certificate of another manufacturer')
  t.match(fleet.logs().filter(line => line.msg === 'fleet: attestation refused'), [{ reason: 'x509pop', code: 'PERMISSION_DENIED', message: /certificate verification failed/ }], 'logged with the reason')
  t.equal(fleet.agent.fleet?.status().attestationsRefused.x509pop, 1, 'and counted')

  const unregistered = fleet.maker.issueBirthCert('SN-U-0001')
  t.match(await failure(fleet.startDevice(unregistered, 'spiffe://fleet.example/u/app')), { code: 'ERR_DOWNSTREAM_ENTRY_MISSING' }, 'a device nobody registered: no device CA')

  const birth = fleet.maker.issueBirthCert('SN-B-0001')
  const deviceId = await fleet.register(birth)
  const device = await fleet.startDevice(birth, `${deviceId}/app`)
  const [agent] = fleet.agent.store.agents.list().filter(a => a.selectors.some(s => s.value === 'subject:cn:SN-B-0001'))
  fleet.agent.store.agents.ban(agent.spiffeId)
  await device.agent.stop()
  t.match(await failure(fleet.startDevice(birth, `${deviceId}/app`)), { code: 'ERR_NODE_ATTESTATION_DENIED', message: /failed to attest: agent is banned/ },
    'a banned device, set up afresh, cannot attest again')
  t.equal(fleet.agent.fleet?.status().attestationsRefused.banned, 1, 'counted as banned')

  t.match(await callFleetAnonymously(fleet, SvidClientService, 'NewDownstreamX509CA', { csr: Buffer.from('x'), preferred_ttl: 0 }),
    { code: status.PERMISSION_DENIED, details: `authorization denied for method ${FLEET_METHODS.newDownstreamX509Ca}` }, 'NewDownstreamX509CA without an X509-SVID: refused in SPIRE\'s words')
  t.match(await callFleetAnonymously(fleet, EntryService, 'GetAuthorizedEntries', {}), { code: status.PERMISSION_DENIED }, 'GetAuthorizedEntries without an agent SVID: refused')
  t.equal(fleet.agent.fleet?.status().callsRefused.no_svid, 2, 'calls refused are counted')
  t.match(await callFleetAnonymously(fleet, BundleService, 'GetBundle', {}), { trust_domain: FLEET_TD.name }, 'GetBundle is answered to anyone')
})
