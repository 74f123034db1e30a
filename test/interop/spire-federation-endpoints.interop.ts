/**
 * Issue 19, "With SPIRE": a real SPIRE server and agent (`spire.example`, spire-stand.ts, serving its bundle endpoint)
 * and a Chaperone agent (`plant.example`, `chaperone agent run` with a config file serving ours) federated BOTH WAYS
 * through https_spiffe bundle endpoints, as the README's "Federating with another trust domain" tells operators.
 * Only the bootstrap bundles are handed over by hand: SPIRE's relationship is made with `spire-server federation
 * create` (bootstrapped with `chaperone bundle show --format spiffe`), ours is in the agent's config file
 * (`federation.relationships`, bootstrapped with `spire-server bundle show -format spiffe`).
 *
 * Proves, each by what the other side holds: SPIRE fetches our endpoint and holds what it serves (an authority
 * appended after its bootstrap bundle was taken included), and a removed authority of ours reaches it at its own next
 * poll, no refresh asked for (SPIRE counts a hint under a minute as a minute and polls 4 times a hint: every 15 s);
 * we fetch SPIRE's (`chaperone federation show`: a successful fetch, SPIRE's sequence), and a new SPIRE authority
 * (`localauthority x509 prepare`) reaches our agent by itself within seconds (minimumRefresh 1s, SPIRE's refresh_hint
 * 4s); workloads under each are given the other's bundle as fetched and call each other through sidecars, both ways,
 * allowed by rules naming the other trust domain, and a workload of the other trust domain that the policy allows
 * nothing is refused by the server's sidecar, both ways; `spire-server federation list|show|refresh` on our agent's
 * SPIRE server socket see and refresh our relationship. Part of `npm run test:interop`; about 50 s once SPIRE is built.
 */
import t from 'tap'
import type { Test } from 'tap'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { RelationshipMessage } from '../../agent/admin/client'
import { freePort } from '../../bench/proxy/processes'
import { createTestCa } from '../../certs-test'
import { parseTrustDomain } from '../../spiffe/id'
import { parseXfcc } from '../../spiffe/peer-header'
import { SpiffeBundle } from '../../spiffe/spiffe-bundle'
import { must, run, waitFor } from '../helpers/command'
import { CLI_BIN, runCli } from '../helpers/cli'
import { reportingApp, startMesh } from '../helpers/mesh'
import type { RunningSidecar } from '../helpers/mesh'
import { interopSkip, SPIRE_VERSION } from './peers'
import { LOG_LINES, SpireProcess } from './spire-process'
import { startSpireStand } from './spire-stand'

const skip = interopSkip()
const SPIRE = 'spiffe://spire.example'
const PLANT = 'spiffe://plant.example'
// Clients are allowed by a path pattern in the other trust domain; the intruders match no rule.
const POLICY = `version: 1
rules:
  - name: spire-clients-read-the-gateway
    from: ["${SPIRE}/clients/**"]
    to: ["${PLANT}/gateway"]
    http: { methods: [GET] }
    action: allow
  - name: plant-clients-read-the-historian
    from: ["${PLANT}/clients/**"]
    to: ["${SPIRE}/historian"]
    http: { methods: [GET] }
    action: allow
`
// An intruder's own sidecar lets it call anything: the refusal must come from the server's side.
const LET_ANYTHING_OUT = 'version: 1\nrules:\n  - { name: anything, from: ["*"], to: ["*"], action: allow }\n'

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`
const bundleOf = (td: string, doc: string): SpiffeBundle => SpiffeBundle.parse(parseTrustDomain(td), doc)
const fingerprints = (bundle: SpiffeBundle): string[] => bundle.x509.authorities.map(c => c.fingerprint256).sort()
const heldBy = (s: RunningSidecar, td: string): SpiffeBundle | undefined => [...s.sidecar.services.identity.current?.context.bundles ?? []].find(b => b.trustDomain.name === td)

/** An app's GET through its sidecar's outbound listener; status 0 when the connection failed. */
async function callThrough (s: RunningSidecar): Promise<{ status: number, body: string }> {
  try {
    const response = await fetch(`http://${s.address('outbound-1')}/v1/status`, { signal: AbortSignal.timeout(10_000) })
    return { status: response.status, body: await response.text() }
  } catch (err) {
    return { status: 0, body: String((err as Error).cause ?? err) }
  }
}

/**
 * `chaperone agent run -c <config>` in a folder of its own, serving our bundle endpoint and fetching SPIRE's
 * (bootstrapped with `spireBundle`); stopped and its folder removed at the test's end.
 */
async function startChaperoneAgent (t: Test, endpointPort: number, spireEndpointPort: number, spireBundle: string): Promise<{ dir: string, adminSocket: string, serverSocket: string, workloadApi: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-federation-'))
  writeFileSync(join(dir, 'spire.json'), spireBundle)
  const [adminSocket, serverSocket, socket] = ['admin.sock', 'server.sock', 'workload.sock'].map(name => join(dir, name))
  writeFileSync(join(dir, 'agent.yaml'), `trustDomain: plant.example
dataDir: ${join(dir, 'data')}
socket: ${socket}
adminSocket: ${adminSocket}
serverSocket: ${serverSocket}
federation:
  bundleEndpoint: { address: 127.0.0.1:${endpointPort}, profile: https_spiffe }
  refreshHint: 4s
  minimumRefresh: 1s
  relationships:
    - trustDomain: spire.example
      bundleEndpointUrl: https://127.0.0.1:${spireEndpointPort}
      profile: https_spiffe
      endpointSpiffeId: ${SPIRE}/spire/server
      bundleFile: ${join(dir, 'spire.json')}
      bundleFormat: spiffe
`)
  const agent = new SpireProcess('chaperone agent')
  t.teardown(async () => {
    await agent.stop()
    if (!t.passing()) t.comment(`the Chaperone agent's log (last ${LOG_LINES} lines):\n${agent.tail()}`)
    rmSync(dir, { recursive: true, force: true })
  })
  agent.start(process.execPath, [CLI_BIN, 'agent', 'run', '-c', join(dir, 'agent.yaml')])
  await waitFor('the Chaperone agent to answer on its admin socket', 30_000, async () => {
    if (!agent.running) throw new Error(`the Chaperone agent exited:\n${agent.tail()}`)
    return (await runCli(['agent', 'status', '--admin-socket', adminSocket])).status === 0 ? true : undefined
  })
  return { dir, adminSocket, serverSocket, workloadApi: `unix://${socket}` }
}

void t.test(`SPIRE ${SPIRE_VERSION} (spire.example) and Chaperone (plant.example) federated both ways through their bundle endpoints`, { skip, timeout: 600_000 }, async t => {
  const startedAt = Date.now()
  if (!existsSync(CLI_BIN)) await must('npm', ['run', 'build', '--silent'], { cwd: join(__dirname, '..', '..'), timeoutMs: 600_000 })
  const [spirePort, ourPort] = [await freePort(), await freePort()]
  const spire = await startSpireStand(t, { x509SvidTtl: 600, bundleEndpoint: { port: spirePort, refreshHint: '4s' } })
  const agent = await startChaperoneAgent(t, ourPort, spirePort, await spire.server('bundle', 'show', '-format', 'spiffe'))
  const dir = agent.dir
  const chaperone = async (...args: string[]): Promise<string> => {
    const result = await runCli([...args, '--admin-socket', agent.adminSocket])
    if (result.status !== 0) throw new Error(`chaperone ${args.join(' ')} exited ${result.status}: ${result.stderr}`)
    return result.stdout
  }
  const relationship = async (): Promise<RelationshipMessage> => JSON.parse(await chaperone('federation', 'show', '--trust-domain', 'spire.example', '--json')) as RelationshipMessage
  const ours = async (): Promise<SpiffeBundle> => bundleOf('plant.example', await chaperone('bundle', 'show', '--format', 'spiffe'))
  const spireViewOfUs = async (): Promise<SpiffeBundle> => bundleOf('plant.example', await spire.server('bundle', 'list', '-id', PLANT, '-format', 'spiffe'))

  // SPIRE's bootstrap bundle is taken BEFORE an authority is appended: SPIRE can learn that one only from our endpoint.
  writeFileSync(join(dir, 'plant.json'), await chaperone('bundle', 'show', '--format', 'spiffe'))
  const extra = createTestCa('plant.example')
  writeFileSync(join(dir, 'extra.pem'), extra.certPem)
  await chaperone('bundle', 'append', '--path', join(dir, 'extra.pem'))
  await spire.server('federation', 'create', '-trustDomain', 'plant.example', '-bundleEndpointURL', `https://127.0.0.1:${ourPort}`, '-bundleEndpointProfile', 'https_spiffe',
    '-endpointSpiffeID', `${PLANT}/spire/server`, '-trustDomainBundlePath', join(dir, 'plant.json'), '-trustDomainBundleFormat', 'spiffe')
  const spireFirstFetch = Date.now()
  t.comment(`SPIRE and the Chaperone agent up, federated, in ${seconds(Date.now() - startedAt)}`)

  await t.test('SPIRE fetches our bundle endpoint (https_spiffe, authenticated with the bootstrap bundle) and holds what it serves', async t => {
    const held = await waitFor('SPIRE to hold the authority appended after its bootstrap bundle', 30_000, async () => {
      const view = await spireViewOfUs()
      return view.x509.authorities.some(c => c.fingerprint256 === extra.cert.fingerprint256) ? view : undefined
    })
    const served = await ours()
    t.equal(served.x509.authorities.length, 2, 'we serve the CA\'s root and the appended one')
    t.same(fingerprints(held), fingerprints(served), 'SPIRE holds exactly our X.509 authorities, the appended one included')
    t.match(await spire.server('federation', 'show', '-trustDomain', 'plant.example'),
      `Trust domain              : plant.example\nBundle endpoint URL       : https://127.0.0.1:${ourPort}\nBundle endpoint profile   : https_spiffe\nEndpoint SPIFFE ID        : ${PLANT}/spire/server\n`,
      'spire-server federation show: the relationship with our endpoint')
  })

  await t.test('our removed authority reaches SPIRE at its own next poll (no refresh asked for)', async t => {
    await chaperone('bundle', 'remove-authority', '--sha256', extra.cert.fingerprint256)
    const removedAt = Date.now()
    const served = await ours()
    t.notOk(served.x509.authorities.some(c => c.fingerprint256 === extra.cert.fingerprint256), 'we no longer serve the appended authority')
    const held = await waitFor('SPIRE\'s next poll of our endpoint', 60_000, async () => {
      const view = await spireViewOfUs()
      return fingerprints(view).join() === fingerprints(served).join() ? view : undefined
    })
    t.same(fingerprints(held), fingerprints(served), 'SPIRE holds exactly our X.509 authorities again: the removed one is gone')
    t.comment(`SPIRE took the change ${seconds(Date.now() - removedAt)} after it was made, ${seconds(Date.now() - spireFirstFetch)} after its first fetch`)
  })

  await t.test('we fetch SPIRE\'s endpoint; a new SPIRE authority reaches our agent by itself within seconds', async t => {
    const before = await relationship()
    t.match(before, { source: 'config', profile: 'https_spiffe', endpoint_spiffe_id: `${SPIRE}/spire/server`, has_bundle: true, consecutive_failures: 0, last_error: '' }, 'the config file\'s relationship, no failure')
    t.ok(before.last_success_at > 0, 'a fetch of SPIRE\'s endpoint succeeded')
    const spireOwn = bundleOf('spire.example', await spire.server('bundle', 'show', '-format', 'spiffe'))
    t.equal(before.bundle_sequence, spireOwn.sequence, `the bundle held has SPIRE's sequence (${spireOwn.sequence ?? '-'})`)
    t.match(await chaperone('federation', 'show', '--trust-domain', 'spire.example'), /^Last fetch {6}: \S+ ok\n/m, 'chaperone federation show: the last fetch ok')

    await spire.server('localauthority', 'x509', 'prepare')
    const changed = bundleOf('spire.example', await spire.server('bundle', 'show', '-format', 'spiffe'))
    t.equal(changed.x509.authorities.length, 2, 'SPIRE prepared a second X.509 authority: its bundle changed')
    const at = Date.now()
    const held = await waitFor('our agent to fetch SPIRE\'s changed bundle', 20_000, async () => {
      const view = bundleOf('spire.example', await chaperone('bundle', 'show', '--id', SPIRE, '--format', 'spiffe'))
      return view.sequence === changed.sequence ? view : undefined
    })
    t.comment(`our agent held SPIRE's new authority ${seconds(Date.now() - at)} after it was prepared`)
    t.same(fingerprints(held), fingerprints(changed), 'we hold SPIRE\'s X.509 authorities, the new one included')
    t.ok((await relationship()).last_update_at * 1000 >= at - 1000, 'federation show: the bundle changed by a fetch just now')
  })

  await t.test('workloads under each call the other\'s through sidecars, both ways; the other domain\'s intruder is refused, both ways', async t => {
    const uid = `unix:uid:${process.getuid?.() ?? 0}`
    for (const name of ['gateway', 'clients/hmi', 'intruder']) await chaperone('entry', 'create', '--spiffe-id', `${PLANT}/${name}`, '--selector', uid, '--federates-with', SPIRE)
    for (const name of ['historian', 'clients/dashboard', 'intruder']) await spire.createEntry({ spiffeId: `${SPIRE}/${name}`, selectors: [uid], federatesWith: [PLANT] })
    await spire.waitForSvids([`${SPIRE}/historian`, `${SPIRE}/clients/dashboard`, `${SPIRE}/intruder`])
    // The mesh gives the policy file, the sidecars and the app; its own agent stays idle (ours runs from the config file).
    const mesh = await startMesh(POLICY)
    t.teardown(async () => { await mesh.close() })
    const app = await reportingApp()
    t.teardown(() => { app.server.close() })
    const looseFile = join(dir, 'intruder-policy.yaml')
    writeFileSync(looseFile, LET_ANYTHING_OUT)
    const inbound = { inboundHttp: [`127.0.0.1:0=127.0.0.1:${app.port}`] }
    const gateway = await mesh.startSidecar(`${PLANT}/gateway`, { workloadApi: agent.workloadApi, ...inbound })
    const historian = await mesh.startSidecar(`${SPIRE}/historian`, { workloadApi: spire.workloadApi, ...inbound })
    const toward = (server: RunningSidecar, id: string): { outboundHttp: string[] } => ({ outboundHttp: [`127.0.0.1:0=127.0.0.1:${server.port('inbound-1')}@${id},port=${app.port}`] })
    const client = async (id: string, workloadApi: string, server: RunningSidecar, serverId: string, policy?: string): Promise<RunningSidecar> =>
      await mesh.startSidecar(id, { workloadApi, ...toward(server, serverId), ...(policy === undefined ? {} : { policy }) })
    const dashboard = await client(`${SPIRE}/clients/dashboard`, spire.workloadApi, gateway, `${PLANT}/gateway`)
    const hmi = await client(`${PLANT}/clients/hmi`, agent.workloadApi, historian, `${SPIRE}/historian`)
    const spireIntruder = await client(`${SPIRE}/intruder`, spire.workloadApi, gateway, `${PLANT}/gateway`, looseFile)
    const plantIntruder = await client(`${PLANT}/intruder`, agent.workloadApi, historian, `${SPIRE}/historian`, looseFile)
    // Each sidecar holds the other trust domain's bundle as it was fetched: SPIRE's view of ours, our agent's of SPIRE's.
    const fetched = { 'plant.example': fingerprints(await spireViewOfUs()), 'spire.example': fingerprints(bundleOf('spire.example', await chaperone('bundle', 'show', '--id', SPIRE, '--format', 'spiffe'))) }
    for (const [s, td] of [[dashboard, 'plant.example'], [historian, 'plant.example'], [spireIntruder, 'plant.example'], [hmi, 'spire.example'], [gateway, 'spire.example'], [plantIntruder, 'spire.example']] as const) {
      const held = async (): Promise<true | undefined> => fingerprints(heldBy(s, td) ?? bundleOf(td, '{"keys":[]}')).join() === fetched[td].join() ? true : undefined
      await waitFor(`the fetched ${td} bundle at ${s.sidecar.services.identity.current?.context.spiffeId.toString() ?? '?'}`, 30_000, held)
    }
    t.same(fetched['plant.example'], fingerprints(await ours()), 'SPIRE\'s workloads were given our bundle as we serve it, by SPIRE\'s agent')
    for (const [from, to, caller, server] of [[dashboard, gateway, `${SPIRE}/clients/dashboard`, `${PLANT}/gateway`], [hmi, historian, `${PLANT}/clients/hmi`, `${SPIRE}/historian`]] as const) {
      const response = await callThrough(from)
      t.equal(response.status, 200, `${caller} → ${server}: ${response.body.slice(0, 200)}`)
      const xfcc = response.status === 200 ? (JSON.parse(response.body) as { headers: Record<string, string> }).headers['x-forwarded-client-cert'] : undefined
      t.match(xfcc === undefined ? 'none' : parseXfcc(xfcc), [{ by: server, uri: caller }], 'the app behind the server\'s sidecar is told the caller of the other trust domain')
      t.equal(to.logs.filter(l => l.event === 'connection_refused').length, 0, 'the server\'s sidecar refused nothing so far')
    }
    const seen = app.seen.length
    for (const [from, to, intruder] of [[spireIntruder, gateway, `${SPIRE}/intruder`], [plantIntruder, historian, `${PLANT}/intruder`]] as const) {
      const response = await callThrough(from)
      t.not(response.status, 200, `${intruder} → the other trust domain's server: refused (${response.status}): ${response.body.slice(0, 200)}`)
      t.match(to.logs.find(l => l.event === 'connection_refused' && l.peer === intruder), { reason: 'no_allow_rule' },
        'the server\'s sidecar verified the intruder\'s chain to the fetched bundle, then refused it by policy')
    }
    t.equal(app.seen.length, seen, 'the app saw neither intruder')
  })

  await t.test('spire-server federation list|show|refresh on our agent\'s SPIRE server socket', async t => {
    const ourSocket = async (...args: string[]): Promise<{ status: number | null, out: string }> => {
      const result = await run(spire.serverBinary, [...args, '-socketPath', agent.serverSocket], { timeoutMs: 30_000 })
      return { status: result.status, out: `${result.stdout}${result.stderr}` }
    }
    const relationshipText = `Trust domain              : spire.example\nBundle endpoint URL       : https://127.0.0.1:${spirePort}\nBundle endpoint profile   : https_spiffe\nEndpoint SPIFFE ID        : ${SPIRE}/spire/server\n`
    const listed = await ourSocket('federation', 'list')
    t.match(listed, { status: 0, out: `Found 1 federation relationship\n\n${relationshipText}` }, 'federation list: our config file\'s relationship')
    t.match(await ourSocket('federation', 'show', '-trustDomain', 'spire.example'), { status: 0, out: `Found a federation relationship with trust domain spire.example:\n\n${relationshipText}` }, 'federation show')
    const asked = Math.floor(Date.now() / 1000)
    t.same(await ourSocket('federation', 'refresh', '-id', SPIRE), { status: 0, out: 'Bundle refreshed\n' }, 'federation refresh: our agent fetched SPIRE\'s endpoint')
    t.ok((await relationship()).last_success_at >= asked, 'chaperone federation show: a fetch succeeded just now')
  })

  t.comment(`in all ${seconds(Date.now() - startedAt)}`)
})
