/**
 * An unmodified `spire-server` (SPIRE_VERSION) nested under a Chaperone agent in the upstream role (`fleet:`), as
 * SPIRE nests one server under another (UpstreamAuthority "spire", SPIRE's test/integration/suites/nested-rotation):
 * the nested server takes its X509-SVID from the Chaperone agent's Workload API (a `downstream` entry for its uid),
 * calls the fleet's port for its CA (NewDownstreamX509CA), the bundle (GetBundle) and its JWT key (PublishJWTAuthority).
 * A SPIRE agent under the nested server and a Chaperone device under the fleet then share one trust domain: X509-SVIDs
 * from either `openssl verify` against the fleet's bundle, and JWT-SVIDs minted on one side validate on the other.
 * Part of `npm run test:interop`.
 */
import t from 'tap'
import { X509Certificate } from 'node:crypto'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { X509Bundle } from '../../spiffe/x509-bundle'
import { verifyX509Svid } from '../../spiffe/x509-svid'
import { decodePem } from '../../spiffe/pem'
import { must, waitFor } from '../helpers/command'
import { FLEET_TD, startFleetStand } from '../agent/fleet/fixtures/fleet-stand'
import { interopSkip, SPIRE_VERSION } from './peers'
import { startSpireStand } from './spire-stand'
import { opensslVerifyAgainstSpire } from './x509pop-device'

const skip = interopSkip()
const TD = FLEET_TD.name
const AUDIENCE = 'nested-app'
const UID = process.getuid?.() ?? 0

void t.test(`an unmodified spire-server ${SPIRE_VERSION} nested under a Chaperone fleet agent`, { skip, timeout: 600_000 }, async t => {
  const fleet = await startFleetStand(t)
  const fleetRoots = fleet.agent.ca.bundle().x509
  const nestedId = `spiffe://${TD}/nested-server`
  // What `chaperone entry create --downstream` registers: the nested server's identity, for its uid, allowed to ask
  // the fleet for a CA.
  fleet.agent.store.createEntry({ spiffeId: nestedId, selectors: [`unix:uid:${UID}`], downstream: true })
  const nested = await startSpireStand(t, {
    trustDomain: TD,
    upstreamAuthority: { address: fleet.address, workloadApiSocket: join(fleet.dir, 'workload.sock') }
  })

  await t.test('its CA is signed by the fleet agent, its bundle is the fleet\'s roots', async t => {
    const bundle = X509Bundle.fromPem(FLEET_TD, await nested.bundlePem())
    t.same(bundle.authorities.map(root => root.fingerprint256), fleetRoots.authorities.map(root => root.fingerprint256),
      'spire-server bundle show prints the Chaperone agent\'s root, nothing of its own')
    const signed = fleet.logs().find(line => line.msg === 'fleet: signed a downstream X.509 CA')
    t.match(signed, { caller: nestedId }, 'the fleet agent logged the CA it signed for the nested server')
  })

  const workloadId = `spiffe://${TD}/nested/app`
  await nested.createEntry({ spiffeId: workloadId, selectors: [`unix:uid:${UID}`] })
  const [svid] = await nested.waitForSvids([workloadId])
  const nestedChain = decodePem(svid.certPem).map(block => block.der)
  const birth = fleet.maker.issueBirthCert('SN-NEST-0001')
  const deviceId = await fleet.register(birth)
  const device = await fleet.startDevice(birth, `${deviceId}/app`)
  const deviceSocket = join(device.dir, 'workload.sock')
  const deviceApi = async (args: string[]): Promise<string> => await must(nested.agentBinary, ['api', ...args, '-socketPath', deviceSocket], { timeoutMs: 30_000 })

  await t.test('X509-SVIDs under the nested server and under a Chaperone device trust each other', async t => {
    t.equal(nestedChain.length, 2, 'the SPIRE agent\'s SVID comes with the nested server\'s CA')
    t.match(new X509Certificate(nestedChain[1]).subject, /OU=DOWNSTREAM-1/, 'which the fleet agent named OU=DOWNSTREAM-1, as SPIRE does')
    t.equal(verifyX509Svid(nestedChain, fleetRoots).toString(), workloadId, 'the fleet\'s roots verify it')
    t.match(await opensslVerifyAgainstSpire(nested, nestedChain, 'nested-svid'), /: OK/, 'so does openssl, against the nested server\'s bundle')
    const out = mkdtempSync(join(device.dir, 'fetch-'))
    t.teardown(() => { rmSync(out, { recursive: true, force: true }) })
    await deviceApi(['fetch', 'x509', '-write', out])
    t.ok(readdirSync(out).includes('svid.0.pem'), 'the device issued its workload an SVID')
    const deviceChain = decodePem(readFileSync(join(out, 'svid.0.pem'), 'utf8')).map(block => block.der)
    t.equal(verifyX509Svid(deviceChain, X509Bundle.fromPem(FLEET_TD, svid.bundlePem)).toString(), `${deviceId}/app`,
      'the bundle SPIRE\'s agent gives its workload verifies the device\'s workload')
    t.equal(verifyX509Svid(nestedChain, X509Bundle.fromPem(FLEET_TD, readFileSync(join(out, 'bundle.0.pem'), 'utf8'))).toString(), workloadId,
      'and the device\'s bundle verifies the SPIRE workload')
  })

  await t.test('a JWT-SVID minted under the nested server validates on a Chaperone device, and the other way', async t => {
    const fromNested = /^token\(([^)]+)\):\n\s*(\S+)/m.exec((await nested.agentCommand(['api', 'fetch', 'jwt', '-audience', AUDIENCE])).stdout)?.[2]
    t.ok(fromNested, 'SPIRE\'s agent under the nested server minted a JWT-SVID')
    // The nested server published its JWT key to the fleet agent; the device reads the fleet's bundle every 5 s.
    const onDevice = await waitFor('the device to hold the nested server\'s JWT key', 60_000, async () =>
      await deviceApi(['validate', 'jwt', '-audience', AUDIENCE, '-svid', fromNested ?? '']).catch(() => undefined))
    t.match(onDevice, workloadId, 'the Chaperone device validates it')
    const fromDevice = /^token\(([^)]+)\):\n\s*(\S+)/m.exec(await deviceApi(['fetch', 'jwt', '-audience', AUDIENCE]))?.[2]
    t.ok(fromDevice, 'the device minted a JWT-SVID')
    const atNested = await waitFor('SPIRE\'s agent under the nested server to hold the device\'s JWT key', 90_000, async () => {
      const result = await nested.agentCommand(['api', 'validate', 'jwt', '-audience', AUDIENCE, '-svid', fromDevice ?? ''])
      return result.status === 0 ? result.stdout : undefined
    })
    t.match(atNested, `${deviceId}/app`, 'SPIRE\'s agent validates it')
    // SPIRE's plugin stops its bundle poller each time a CA stream ends, cancelling a GetBundle in flight: it then
    // warns "context canceled" whatever the upstream (pkg/server/plugin/upstreamauthority/spire/spire.go).
    const trouble = nested.logs().split('\n').filter(line => line.startsWith('spire-server:') && /level=(warning|error)/.test(line) && /upstream|jwt|bundle/i.test(line) && !line.includes('context canceled'))
    t.same(trouble, [], 'the nested server logged no trouble with its upstream')
  })
})
