/**
 * Issue 18's "Done when" under a real SPIRE server (SPIRE_VERSION), on network namespaces, one per machine:
 * "spire" runs spire-server (x509pop trusting a test manufacturer) and spire-agent; "dev1" and "dev2" each run
 * `chaperone agent run` with `upstream:` pointing at the server across the bridge, a transparent sidecar and an
 * unchanged app; "rogue" holds the devices that must be refused. Proves: the devices attest with birth certificates
 * and get device CAs; dev1's app calls dev2's by address (XFCC names dev1's app; a denied method refused and logged);
 * the SVIDs `openssl verify` against SPIRE's bundle; a JWT-SVID from dev1 validates on dev2; a Chaperone sidecar fed
 * by SPIRE's own agent talks to the app on dev2; device CAs of 60 s rotate at half-life under continuous load with 0
 * failed requests; the server stopped longer than an SVID lives (20 s) while calls go on, then resync; a foreign
 * birth certificate and a banned device refused, the reason logged at both ends (and the banned device let in again once
 * evicted). Part of `npm run test:interop`.
 */
import t from 'tap'
import { TestManufacturer } from '../../certs-test'
import { birthCredential, x509popAgentId } from '../../agent/upstream'
import { waitFor } from '../helpers/command'
import { betweenDevices, deviceCaShown, refusedDevices, rotationAndOutage, spireWorkloadCalls } from './fleet-netns-checks'
import { TD, skipFleetNetns, startFleetNetnsStand } from './fleet-netns-stand'
import type { FleetUpstream } from './fleet-netns-stand'
import { SPIRE_VERSION } from './peers'
import { startX509popStand } from './x509pop-device'

const skip = skipFleetNetns()
const CA_TTL = '60s'
const X509_TTL = '20s'
const app = (serial: string): string => `spiffe://${TD.name}/device/${serial}/app`
const SPIRE_WORKLOAD = `spiffe://${TD.name}/spire-workload`
const POLICY = `version: 1
rules:
  - { name: dev1-reads-dev2, from: ["${app('SN-DEV-1')}"], to: ["${app('SN-DEV-2')}"], ports: [8080], http: { methods: [GET] }, action: allow }
  - { name: spire-workload-reads-dev2, from: ["${SPIRE_WORKLOAD}"], to: ["${app('SN-DEV-2')}"], ports: [8080], http: { methods: [GET] }, action: allow }
`

void t.test(`Chaperone devices under spire-server ${SPIRE_VERSION} on network namespaces`, { skip, timeout: 900_000 }, async t => {
  const startedAt = Date.now()
  const stand = await startFleetNetnsStand(t, 'fnspi', ['spire', 'dev1', 'dev2', 'rogue'], POLICY)
  const { maker, spire } = await startX509popStand(t, TD, {
    netns: stand.topology.hosts.spire.ns, bindAddress: stand.address('spire'), restartableServer: true, x509SvidTtl: 30
  })
  const upstream: FleetUpstream = {
    name: 'SPIRE server',
    address: spire.serverAddress,
    bundlePem: spire.bundlePem,
    registerDevice: async birth => {
      const deviceId = `spiffe://${TD.name}/device/${birth.serial}`
      await spire.createEntry({ parentId: x509popAgentId(TD, birthCredential(birth.chain, birth.key)).toString(), spiffeId: deviceId, selectors: [`x509pop:subject:cn:${birth.serial}`], downstream: true })
      return deviceId
    },
    stop: spire.stopServer,
    start: spire.startServer,
    logs: spire.logs
  }
  const options = { upstream, caTtl: CA_TTL, x509Ttl: X509_TTL }
  const dev1 = await stand.device('dev1', maker.issueBirthCert('SN-DEV-1'), options)
  const dev2 = await stand.device('dev2', maker.issueBirthCert('SN-DEV-2'), options)
  const refusals = await Promise.all([stand.startAgent(dev1), stand.startAgent(dev2)])
  t.same(refusals, [undefined, undefined], 'both devices attest and start')
  await Promise.all([stand.startWorkload(dev1), stand.startWorkload(dev2)])
  t.comment(`SPIRE and two devices with sidecars up in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`)

  await t.test('the devices attested with their birth certificates and hold device CAs from SPIRE', async t => {
    await deviceCaShown(t, [dev1, dev2], `SPIRE server ${spire.serverAddress}`)
    const agents = await spire.server('agent', 'list')
    for (const device of [dev1, dev2]) t.match(agents, device.agentId, `spire-server agent list shows ${device.host}`)
  })

  await betweenDevices(t, stand, upstream, dev1, dev2, 'SPIRE\'s bundle')

  await t.test('a Chaperone sidecar fed by SPIRE\'s own agent (namespace spire) calls the app on dev2', async t => {
    await spire.createEntry({ spiffeId: SPIRE_WORKLOAD, selectors: ['unix:uid:0'] })
    await spire.waitForSvids([SPIRE_WORKLOAD])
    await spireWorkloadCalls(t, stand, 'spire', spire.workloadApi, SPIRE_WORKLOAD, dev2)
  })

  await rotationAndOutage(t, stand, upstream, dev1, dev2, CA_TTL)

  await t.test('refused: a foreign birth certificate, and a banned device', async t => {
    await refusedDevices(t, stand, 'rogue', { foreign: new TestManufacturer({ intermediate: true }).issueBirthCert('SN-FOREIGN-1'), birth: maker.issueBirthCert('SN-BANNED-1') }, options, {
      foreignLogged: async () => await waitFor('SPIRE to log the refusal', 10_000, async () =>
        /spire-server: .*(x509pop|certificate signed by unknown authority|failed to attest)/i.exec(spire.logs())?.[0]),
      bannedLogged: () => /spire-server: .*banned/i.test(spire.logs()),
      ban: async agentId => { await spire.server('agent', 'ban', '-spiffeID', agentId) },
      evict: async agentId => { await spire.server('agent', 'evict', '-spiffeID', agentId) }
    })
  })
})
