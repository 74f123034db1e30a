/**
 * An unmodified `spire-agent` (SPIRE_VERSION) attested to a Chaperone agent in the upstream role (`fleet:`) with its
 * birth certificate (x509pop), as it would attest to a SPIRE server: it syncs its entries (SyncAuthorizedEntries),
 * gets X509-SVIDs and JWT-SVIDs for its workloads, trusted by a Chaperone device of the same fleet; an unmodified
 * `spire-server` nests under the fleet through it (UpstreamAuthority "spire" on this agent's Workload API, SPIRE's
 * own nested topology); listed, evicted and banned with `spire-server agent …` on the fleet agent's SPIRE server API
 * socket: evicted, it attests again by itself (SPIRE's AGENT_NOT_ATTESTED in the status details); banned, it stops
 * (AGENT_BANNED). Part of `npm run test:interop`.
 */
import t from 'tap'
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { birthCredential, x509popAgentId } from '../../agent/upstream'
import { X509Bundle } from '../../spiffe/x509-bundle'
import { verifyX509Svid } from '../../spiffe/x509-svid'
import { decodePem } from '../../spiffe/pem'
import { must, run, waitFor } from '../helpers/command'
import { FLEET_TD, startFleetStand } from '../agent/fleet/fixtures/fleet-stand'
import { interopSkip, spireServer, SPIRE_VERSION } from './peers'
import { startX509popSpireAgent } from './spire-x509pop-agent'
import { startSpireStand } from './spire-stand'

const skip = interopSkip()
const TD = FLEET_TD.name
const AUDIENCE = 'fleet-app'
const UID = process.getuid?.() ?? 0

void t.test(`an unmodified spire-agent ${SPIRE_VERSION} attested to a Chaperone fleet agent`, { skip, timeout: 600_000 }, async t => {
  const fleet = await startFleetStand(t)
  const fleetRoots = fleet.agent.ca.bundle().x509
  const birth = fleet.maker.issueBirthCert('SN-SPIRE-AGENT-1')
  const agentId = x509popAgentId(FLEET_TD, birthCredential(birth.chain, birth.key)).toString()
  const spire = await startX509popSpireAgent(t, {
    dir: fleet.dir.replace(/fleet$/, 'spire-agent'), trustDomain: TD, serverAddress: fleet.address, bundlePem: fleetRoots.toPem(), birth
  })
  const { binary, api } = spire
  const socket = spire.socket
  const spireCli = async (args: string[]): Promise<string> => await must(await spireServer(), [...args, '-socketPath', join(fleet.dir, 'server', 'api.sock')], { timeoutMs: 30_000 })

  await t.test('it attests with its birth certificate and is recorded with SPIRE\'s selectors', async t => {
    const recorded = fleet.agent.store.agents.get(agentId)
    t.ok(recorded, `the fleet agent recorded ${agentId}`)
    t.ok(recorded?.selectors.some(s => s.type === 'x509pop' && s.value === 'subject:cn:SN-SPIRE-AGENT-1'), 'with x509pop:subject:cn')
  })

  const workloadId = `spiffe://${TD}/spire-agent/app`
  const nestedId = `spiffe://${TD}/nested-server`
  const appEntry = fleet.agent.store.createEntry({ spiffeId: workloadId, parentId: agentId, selectors: [`unix:uid:${UID}`] })
  // SPIRE's agent syncs its entries every 5 s with SyncAuthorizedEntries (it no longer falls back to
  // GetAuthorizedEntries), so an SVID for the entry shows that call works.
  const fetchChain = async (): Promise<Buffer[] | undefined> => {
    const written = join(fleet.dir, '..', 'fetched')
    mkdirSync(written, { recursive: true })
    const out = await run(binary, ['api', 'fetch', 'x509', '-socketPath', socket, '-write', written], { timeoutMs: 30_000 })
    if (out.status !== 0 || !out.stdout.includes(workloadId)) return undefined
    return decodePem(readFileSync(join(written, 'svid.0.pem'), 'utf8')).map(block => block.der)
  }

  await t.test('its workloads get X509-SVIDs and JWT-SVIDs that a Chaperone device trusts', async t => {
    const chain = await waitFor('spire-agent to sync the entry and issue its SVID', 60_000, fetchChain)
    t.equal(verifyX509Svid(chain, fleetRoots).toString(), workloadId, 'the SVID chains to the fleet\'s roots')
    const deviceBirth = fleet.maker.issueBirthCert('SN-DEV-WITH-SPIRE')
    const deviceId = await fleet.register(deviceBirth)
    const device = await fleet.startDevice(deviceBirth, `${deviceId}/app`)
    const deviceSocket = join(device.dir, 'workload.sock')
    const token = /^token\(([^)]+)\):\n\s*(\S+)/m.exec(await api(['fetch', 'jwt', '-audience', AUDIENCE]))?.[2]
    t.ok(token, 'spire-agent minted a JWT-SVID through the fleet agent (NewJWTSVID)')
    const validated = await must(binary, ['api', 'validate', 'jwt', '-audience', AUDIENCE, '-svid', token ?? '', '-socketPath', deviceSocket], { timeoutMs: 30_000 })
    t.match(validated, workloadId, 'the Chaperone device validates it')
    const bundle = X509Bundle.fromPem(FLEET_TD, device.agent.ca.bundle().x509.toPem())
    t.equal(verifyX509Svid(chain, bundle).toString(), workloadId, 'and verifies its X509-SVID')
  })

  await t.test('an unmodified spire-server nests under the fleet through it', async t => {
    // SPIRE's plugin calls with the first SVID the Workload API gives the server's uid (this test's): only this one.
    fleet.agent.store.deleteEntry(appEntry.id)
    fleet.agent.store.createEntry({ spiffeId: nestedId, parentId: agentId, selectors: [`unix:uid:${UID}`], downstream: true })
    await waitFor('spire-agent to issue only the nested server\'s SVID', 60_000, async () => {
      const ids = [...(await api(['fetch', 'x509'])).matchAll(/SPIFFE ID:\s+(\S+)/g)].map(match => match[1])
      return ids.length === 1 && ids[0] === nestedId ? true : undefined
    })
    const nested = await startSpireStand(t, { trustDomain: TD, upstreamAuthority: { address: fleet.address, workloadApiSocket: socket } })
    const leafId = `spiffe://${TD}/nested/app`
    await nested.createEntry({ spiffeId: leafId, selectors: [`unix:uid:${UID}`] })
    const [svid] = await nested.waitForSvids([leafId])
    const nestedChain = decodePem(svid.certPem).map(block => block.der)
    t.equal(verifyX509Svid(nestedChain, fleetRoots).toString(), leafId, 'an SVID under the nested server chains to the fleet\'s roots')
    t.ok(fleet.logs().some(line => line.msg === 'fleet: signed a downstream X.509 CA' && line.caller === nestedId), 'the fleet agent signed the nested server\'s CA')
  })

  await t.test('more entries than a page (500): synced as pages of revisions, then the entries asked for', async t => {
    const many = Array.from({ length: 520 }, (_, i) => `spiffe://${TD}/spire-agent/many/${i}`)
    for (const spiffeId of many) fleet.agent.store.createEntry({ spiffeId, parentId: agentId, selectors: [`unix:uid:${UID}`] })
    const served = await waitFor('spire-agent to serve every entry', 120_000, async () => {
      const out = await run(binary, ['api', 'fetch', 'x509', '-socketPath', socket], { timeoutMs: 60_000 })
      const ids = new Set([...out.stdout.matchAll(/SPIFFE ID:\s+(\S+)/g)].map(match => match[1]))
      return many.every(id => ids.has(id)) ? ids : undefined
    })
    t.equal(served.size, many.length + 1, `spire-agent serves all ${many.length} and the nested server's, each once`)
  })

  await t.test('evicted, it attests again by itself; banned, it stops', async t => {
    const before = fleet.agent.store.agents.get(agentId)?.attestedAt ?? 0
    await new Promise(resolve => setTimeout(resolve, 1100))
    // As an operator of a SPIRE server would: spire-server's own CLI on the fleet agent's SPIRE server API socket.
    t.match(await spireCli(['agent', 'list']), agentId, 'spire-server agent list shows it')
    await spireCli(['agent', 'evict', '-spiffeID', agentId])
    const again = await waitFor('spire-agent to attest again', 90_000, async () => {
      const agent = fleet.agent.store.agents.get(agentId)
      return agent !== undefined && agent.attestedAt > before ? agent : undefined
    })
    t.ok(again, 'recorded anew after the eviction')
    const served = await waitFor('its workloads to be served again', 60_000, async () => (await api(['fetch', 'x509'])).includes(nestedId) ? true : undefined)
    t.ok(served, 'and its workloads are served again')
    await spireCli(['agent', 'ban', '-spiffeID', agentId])
    await waitFor('spire-agent to stop once banned', 90_000, async () => spire.process.running ? undefined : true)
    t.match(spire.process.tail(), /banned/i, 'it said it was banned')
  })
})
