/**
 * Issue 18's "Done when" under a Chaperone fleet upstream (no SPIRE server), on network namespaces, one per machine:
 * "fleet" runs `chaperone agent run` with `fleet:` (trusting a test manufacturer's roots); "dev1" and "dev2" each run
 * `chaperone agent run` with `upstream:` pointing at it across the bridge, a transparent sidecar and an unchanged app;
 * "rogue" holds the devices that must be refused. Devices are registered with SPIRE's own `spire-server entry create
 * -downstream` against the fleet agent's SPIRE server API socket. Proves: attestation with birth certificates and
 * device CAs; dev1's app calls dev2's by address (XFCC names dev1's app; a denied method refused and logged); SVIDs
 * that `openssl verify` against the fleet's bundle; a JWT-SVID from dev1 valid on dev2; device CAs of 60 s rotating
 * at half-life under continuous load with 0 failed requests; the fleet agent stopped longer than an SVID lives (20 s)
 * while calls go on, then resync; a foreign birth certificate refused with the reason logged at both ends; a device
 * banned with `chaperone fleet ban` refused likewise, and let in again once evicted; and an unmodified `spire-server`
 * nested under the fleet agent from its own machine ("nested", through a `spire-agent` attested by x509pop), whose
 * workload's sidecar calls dev2's app. Part of `npm run test:interop`.
 */
import t from 'tap'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { TestManufacturer } from '../../certs-test'
import { X509Bundle } from '../../spiffe/x509-bundle'
import { birthCredential, x509popAgentId } from '../../agent/upstream'
import { runCli } from '../helpers/cli'
import { waitFor } from '../helpers/command'
import { betweenDevices, deviceCaShown, refusedDevices, rotationAndOutage, spireWorkloadCalls } from './fleet-netns-checks'
import { TD, skipFleetNetns, spireServerCli, startFleetNetnsStand } from './fleet-netns-stand'
import type { FleetUpstream } from './fleet-netns-stand'
import { startSpireStand } from './spire-stand'
import { startX509popSpireAgent } from './spire-x509pop-agent'

const skip = skipFleetNetns()
const CA_TTL = '60s'
const X509_TTL = '20s'
const FLEET_PORT = 8081
const app = (serial: string): string => `spiffe://${TD.name}/device/${serial}/app`
const NESTED_WORKLOAD = `spiffe://${TD.name}/nested/app`
const POLICY = `version: 1
rules:
  - { name: dev1-reads-dev2, from: ["${app('SN-DEV-1')}"], to: ["${app('SN-DEV-2')}"], ports: [8080], http: { methods: [GET] }, action: allow }
  - { name: nested-reads-dev2, from: ["${NESTED_WORKLOAD}"], to: ["${app('SN-DEV-2')}"], ports: [8080], http: { methods: [GET] }, action: allow }
`

void t.test('Chaperone devices under a Chaperone fleet agent on network namespaces', { skip, timeout: 900_000 }, async t => {
  const startedAt = Date.now()
  const stand = await startFleetNetnsStand(t, 'fnchp', ['fleet', 'dev1', 'dev2', 'rogue', 'nested'], POLICY)
  const maker = new TestManufacturer({ intermediate: true })
  const fleetDir = join(stand.dir, 'fleet')
  const serverSocket = join(fleetDir, 'server', 'api.sock')
  const adminSocket = join(fleetDir, 'admin.sock')
  const address = `${stand.address('fleet')}:${FLEET_PORT}`
  mkdirSync(fleetDir)
  writeFileSync(join(fleetDir, 'manufacturers.pem'), maker.caBundlePem)
  writeFileSync(join(fleetDir, 'agent.yaml'), [
    `trustDomain: ${TD.name}`,
    `dataDir: ${join(fleetDir, 'data')}`,
    `socket: ${join(fleetDir, 'workload.sock')}`,
    `adminSocket: ${adminSocket}`,
    `serverSocket: ${serverSocket}`,
    'fleet:',
    `  address: ${address}`,
    `  manufacturerBundleFile: ${join(fleetDir, 'manufacturers.pem')}`,
    ''
  ].join('\n'))
  const fleet = stand.process('fleet', ['agent', 'run', '-c', join(fleetDir, 'agent.yaml'), '--log-level', 'info'], 'fleet agent')
  await fleet.startUntil('chaperone agent running')
  const upstream: FleetUpstream = {
    name: 'Chaperone fleet agent',
    address,
    bundlePem: async () => await spireServerCli(serverSocket, ['bundle', 'show', '-format', 'pem']),
    registerDevice: async birth => {
      const deviceId = `spiffe://${TD.name}/device/${birth.serial}`
      await spireServerCli(serverSocket, ['entry', 'create', '-parentID', x509popAgentId(TD, birthCredential(birth.chain, birth.key)).toString(),
        '-spiffeID', deviceId, '-selector', `x509pop:subject:cn:${birth.serial}`, '-downstream'])
      return deviceId
    },
    stop: async () => { await fleet.stop() },
    start: async () => { await fleet.startUntil('chaperone agent running') },
    logs: () => fleet.stderr
  }
  const options = { upstream, caTtl: CA_TTL, x509Ttl: X509_TTL }
  const dev1 = await stand.device('dev1', maker.issueBirthCert('SN-DEV-1'), options)
  const dev2 = await stand.device('dev2', maker.issueBirthCert('SN-DEV-2'), options)
  t.same(await Promise.all([stand.startAgent(dev1), stand.startAgent(dev2)]), [undefined, undefined], 'both devices attest and start')
  await Promise.all([stand.startWorkload(dev1), stand.startWorkload(dev2)])
  t.comment(`the fleet agent and two devices with sidecars up in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`)

  await t.test('the devices attested with their birth certificates and hold device CAs from the fleet agent', async t => {
    await deviceCaShown(t, [dev1, dev2], `SPIRE server ${address}`) // a device names any upstream so: it speaks SPIRE's API
    const listed = await runCli(['fleet', 'list', '--admin-socket', adminSocket])
    t.equal(listed.status, 0, listed.stderr)
    for (const device of [dev1, dev2]) t.match(listed.stdout, device.agentId, `chaperone fleet list shows ${device.host} attested`)
  })

  await betweenDevices(t, stand, upstream, dev1, dev2, 'the fleet\'s bundle')

  await t.test('an unmodified spire-server on its own machine (namespace nested) nests under the fleet agent', async t => {
    // SPIRE's nested topology across machines: a spire-agent attests to the fleet agent with its birth certificate
    // over the bridge; the spire-server beside it takes its downstream SVID from that agent's Workload API.
    const birth = maker.issueBirthCert('SN-NESTED-1')
    const agentId = x509popAgentId(TD, birthCredential(birth.chain, birth.key)).toString()
    const nestedId = `spiffe://${TD.name}/nested-server`
    await spireServerCli(serverSocket, ['entry', 'create', '-parentID', agentId, '-spiffeID', nestedId, '-selector', 'unix:uid:0', '-downstream'])
    const ns = stand.topology.hosts.nested.ns
    const local = await startX509popSpireAgent(t, { dir: join(stand.dir, 'nested-agent'), trustDomain: TD.name, serverAddress: address, bundlePem: await upstream.bundlePem(), birth, netns: ns })
    await waitFor('the spire-agent to hold the nested server\'s SVID', 60_000, async () => (await local.api(['fetch', 'x509'])).includes(nestedId) ? true : undefined)
    const nested = await startSpireStand(t, { trustDomain: TD.name, netns: ns, bindAddress: stand.address('nested'), upstreamAuthority: { address, workloadApiSocket: local.socket } })
    t.equal(X509Bundle.fromPem(TD, await nested.bundlePem()).authorities.map(root => root.fingerprint256).join(), X509Bundle.fromPem(TD, await upstream.bundlePem()).authorities.map(root => root.fingerprint256).join(),
      'the nested server\'s bundle is the fleet agent\'s roots')
    t.ok(fleet.logs().some(line => line.msg === 'fleet: signed a downstream X.509 CA' && line.caller === nestedId), 'the fleet agent signed its CA')
    await nested.createEntry({ spiffeId: NESTED_WORKLOAD, selectors: ['unix:uid:0'] })
    await nested.waitForSvids([NESTED_WORKLOAD])
    await spireWorkloadCalls(t, stand, 'nested', nested.workloadApi, NESTED_WORKLOAD, dev2)
  })

  await rotationAndOutage(t, stand, upstream, dev1, dev2, CA_TTL)

  await t.test('refused: a foreign birth certificate, and a banned device', async t => {
    const fleetCli = async (args: string[]): Promise<void> => {
      const ran = await runCli(['fleet', ...args, '--admin-socket', adminSocket])
      if (ran.status !== 0) throw new Error(`chaperone fleet ${args.join(' ')}: ${ran.stderr}`)
    }
    await refusedDevices(t, stand, 'rogue', { foreign: new TestManufacturer({ intermediate: true }).issueBirthCert('SN-FOREIGN-1'), birth: maker.issueBirthCert('SN-BANNED-1') }, options, {
      foreignLogged: async address => {
        const line = await waitFor('the fleet agent to log the refusal', 10_000, async () => fleet.logs().find(l => l.reason === 'x509pop' && l.address === address))
        return `${String(line.msg)} (${String(line.reason)}, ${String(line.address)})`
      },
      bannedLogged: () => fleet.logs().some(l => l.reason === 'banned'),
      ban: async agentId => { await fleetCli(['ban', agentId]) },
      evict: async agentId => { await fleetCli(['evict', agentId]) }
    })
  })
})
