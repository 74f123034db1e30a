/**
 * Chaperone agents as devices under a real `spire-server` (SPIRE_VERSION), configured with `upstream:` as an operator
 * would: each attests with its birth certificate (x509pop), gets its device CA from NewDownstreamX509CA and publishes
 * its JWT key. Workloads on the devices get X509-SVIDs whose chains `openssl verify` against SPIRE's bundle and that
 * the other device and SPIRE's own agent trust; a JWT-SVID minted on one device validates on the other and at SPIRE's
 * agent. With the server stopped, a device restarts and issues from what it kept; once the server is back, the
 * device resyncs. A device CA of 40 s rotates at half-life against the server while SVIDs are fetched throughout.
 * SPIRE's `spire-agent api` is the workload here. Part of `npm run test:interop`.
 */
import t from 'tap'
import { X509Certificate } from 'node:crypto'
import { join } from 'node:path'
import { parseTrustDomain } from '../../spiffe/id'
import { X509Bundle } from '../../spiffe/x509-bundle'
import { verifyX509Svid } from '../../spiffe/x509-svid'
import { CLI_SKIP, runCli } from '../helpers/cli'
import { waitFor } from '../helpers/command'
import { startDeviceAgent } from './device-agent'
import { interopSkip, SPIRE_VERSION } from './peers'
import { opensslVerifyAgainstSpire, startX509popStand } from './x509pop-device'

const skip = interopSkip()
const TD = parseTrustDomain('fleet.example')
const AUDIENCE = 'fleet-app'

void t.test(`two Chaperone devices under spire-server ${SPIRE_VERSION}: one trust domain`, { skip, timeout: 600_000 }, async t => {
  const stand = await startX509popStand(t, TD, { restartableServer: true })
  const { maker, spire } = stand
  const spireRoots = new X509Bundle(TD, [new X509Certificate(await spire.bundlePem())])
  const one = await startDeviceAgent(t, stand, maker.issueBirthCert('SN-DEV-0001'), `spiffe://${TD.name}/device/SN-DEV-0001/app`)
  const two = await startDeviceAgent(t, stand, maker.issueBirthCert('SN-DEV-0002'), `spiffe://${TD.name}/device/SN-DEV-0002/app`)

  await t.test('each device CA comes from SPIRE and says how long it can issue', async t => {
    const status = one.agent().ca.status()
    t.ok(status.upstream, 'under an upstream')
    t.equal(status.upstreamName, `SPIRE server ${spire.serverAddress}`)
    const active = status.x509.find(authority => authority.state === 'active')
    t.match(active?.subject, /OU=DOWNSTREAM-1/, 'SPIRE named the device CA OU=DOWNSTREAM-1')
    t.ok(Math.abs(status.issuesUntil.getTime() - Date.now() - 3600_000) < 120_000, `issues until ${status.issuesUntil.toISOString()}: the hour asked for`)
  })

  await t.test('chaperone ca show names the upstream and how long the device can issue without it', { skip: CLI_SKIP }, async t => {
    const shown = await runCli(['ca', 'show', '--admin-socket', join(one.dir, 'admin.sock')])
    t.equal(shown.status, 0, shown.stderr)
    t.match(shown.stdout, /^Trust domain {4}: fleet\.example \(intermediate under an upstream CA\)\nUpstream {8}: SPIRE server 127\.0\.0\.1:\d+\nIssues until {4}: \S+ \(in [01] h \d+ min; longer only by renewing with the upstream\)\n/)
  })

  await t.test('workload X509-SVIDs chain [leaf, device CA] to SPIRE\'s roots, trusted across devices and by SPIRE\'s agent', async t => {
    const fromOne = await one.fetchX509()
    const fromTwo = await two.fetchX509()
    t.equal(fromOne.chain.length, 2, 'leaf and device CA')
    t.same(fromOne.bundle.map(der => der.toString('base64')), spireRoots.authorities.map(root => root.raw.toString('base64')), 'the bundle a workload gets is SPIRE\'s roots')
    t.match(await opensslVerifyAgainstSpire(spire, fromOne.chain, 'device-one-svid'), /: OK/, 'openssl verifies device one\'s workload SVID against SPIRE\'s bundle')
    t.equal(verifyX509Svid(fromOne.chain, new X509Bundle(TD, fromTwo.bundle)).toString(), `${one.deviceId}/app`, 'device two\'s bundle verifies device one\'s SVID')
    t.equal(verifyX509Svid(fromTwo.chain, new X509Bundle(TD, fromOne.bundle)).toString(), `${two.deviceId}/app`, 'and the other way')
    const spireWorkload = `spiffe://${TD.name}/spire-workload`
    await spire.createEntry({ spiffeId: spireWorkload, selectors: [`unix:uid:${process.getuid?.() ?? 0}`] })
    const [svid] = await spire.waitForSvids([spireWorkload])
    const chain = [new X509Certificate(svid.certPem).raw]
    t.equal(verifyX509Svid(chain, new X509Bundle(TD, fromOne.bundle)).toString(), spireWorkload, 'a device trusts a workload of SPIRE\'s agent')
    t.equal(verifyX509Svid(fromOne.chain, X509Bundle.fromPem(TD, svid.bundlePem)).toString(), `${one.deviceId}/app`, 'SPIRE\'s agent\'s bundle trusts a device\'s workload')
  })

  await t.test('a JWT-SVID minted on device one validates on device two and at SPIRE\'s agent', async t => {
    const token = await one.fetchJwt(AUDIENCE)
    const onTwo = await waitFor('device two to hold device one\'s JWT key (GetBundle every 5 s)', 60_000, async () => {
      const result = await two.validateJwt(token, AUDIENCE)
      return result.ok ? result : undefined
    })
    t.match(onTwo.out, `SPIFFE ID : ${one.deviceId}/app`, 'device two validates it')
    t.notOk((await two.validateJwt(token, 'another-audience')).ok, 'for its audience only')
    const atSpire = await waitFor('SPIRE\'s agent to hold device one\'s JWT key', 60_000, async () => {
      const result = await spire.agentCommand(['api', 'validate', 'jwt', '-audience', AUDIENCE, '-svid', token])
      return result.status === 0 ? result.stdout : undefined
    })
    t.match(atSpire, `${one.deviceId}/app`, 'SPIRE\'s agent validates it')
  })

  await t.test('the server stopped: a device restarts and issues from what it kept; the server back: it resyncs', async t => {
    const before = await one.fetchX509()
    await one.stop()
    await spire.stopServer()
    await one.start()
    const offline = await one.fetchX509()
    t.equal(verifyX509Svid(offline.chain, spireRoots).toString(), `${one.deviceId}/app`, 'an SVID issued offline chains to SPIRE\'s roots')
    t.same(offline.chain[1], before.chain[1], 'by the device CA kept on disk')
    t.ok(await one.fetchJwt(AUDIENCE), 'JWT-SVIDs too')
    await waitFor('the device to log the lost upstream', 20_000, async () => one.logs().find(line => line.msg === 'upstream: cannot read the bundle; serving the one held, retrying'))
    await spire.startServer()
    const back = await waitFor('the device to reach the server again', 60_000, async () => one.logs().find(line => line.msg === 'upstream: reachable again; bundle in sync'))
    t.ok(back, `resynced after ${String(back.lostSeconds)} s`)
  })
})

void t.test(`a device CA of 40 s rotates at half-life against spire-server ${SPIRE_VERSION}, SVIDs fetched throughout`, { skip, timeout: 600_000 }, async t => {
  const stand = await startX509popStand(t, TD)
  const spireRoots = new X509Bundle(TD, [new X509Certificate(await stand.spire.bundlePem())])
  const device = await startDeviceAgent(t, stand, stand.maker.issueBirthCert('SN-ROT-0001'), `spiffe://${TD.name}/device/SN-ROT-0001/app`, { caTtl: '40s', x509Ttl: '10s' })
  const first = device.agent().ca.status().x509.find(authority => authority.state === 'active')
  const authorities = new Set<string>()
  let fetched = 0
  const failures: string[] = []
  const until = Date.now() + 55_000
  while (Date.now() < until) {
    try {
      const { chain } = await device.fetchX509()
      verifyX509Svid(chain, spireRoots)
      authorities.add(new X509Certificate(chain[1]).serialNumber)
      fetched++
    } catch (err) {
      failures.push((err as Error).message)
    }
    await new Promise(resolve => setTimeout(resolve, 500))
  }
  t.same(failures, [], `${fetched} fetches, every SVID chaining to SPIRE's roots`)
  t.ok(authorities.size >= 2, `SVIDs from ${authorities.size} device CAs (the first ${String(first?.serial)})`)
  t.ok(device.logs().some(line => line.msg === 'CA: X.509 authority rotation'), 'the rotation is logged')
})
