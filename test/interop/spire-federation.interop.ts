/**
 * A mixed deployment federated by static bundles both ways: a real SPIRE server and agent (`spire.example`, see
 * spire-stand.ts) and a Chaperone agent (`plant.example`, test/helpers/mesh.ts), each holding the other's bundle, set
 * as the README's "Federating statically with another trust domain" tells operators: our side with the built
 * `chaperone` CLI (bundle show, bundle set, entry create --federates-with, bundle list, bundle delete), SPIRE's with
 * `spire-server bundle set` and `entry update -federatesWith`. Four sidecars in this process, two on each Workload
 * API; calls cross the trust domains in both directions, in HTTP mode.
 *
 * Proves: SPIRE's entries without `federatesWith` give its workloads no `plant.example` bundle, so the handshake
 * fails at the SPIRE-side sidecar, as client (outbound) and as server (inbound), logged `handshake_failed` with
 * `ERR_X509_SVID_NO_BUNDLE`; once SPIRE's entries federate, the bundle is pushed to the running sidecars and allowed
 * calls cross both ways, the app told the foreign caller's SPIFFE ID (X-Forwarded-Client-Cert, with the hash of
 * the very certificate); a workload of the other trust domain that the policy allows nothing is refused and logged,
 * at either side; `chaperone bundle delete` at run time is pushed to our sidecars and new connections from the
 * SPIRE side are refused (`ERR_X509_SVID_NO_BUNDLE`), and `bundle set` again lets them in. Part of
 * `npm run test:interop`.
 *
 * The CLI is dist/cli/main.js: `npm test` (which .ci/run runs first) builds it; when it is missing the test builds
 * it once rather than skip, so the operator's recipe is always run. About 15 s once SPIRE is built.
 */
import t from 'tap'
import { createHash, X509Certificate } from 'node:crypto'
import { existsSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import { parseXfcc } from '../../spiffe/peer-header'
import { must, run, waitFor } from '../helpers/command'
import { CLI_BIN, runCli } from '../helpers/cli'
import { reportingApp, startMesh } from '../helpers/mesh'
import type { RunningSidecar } from '../helpers/mesh'
import { interopSkip, SPIRE_VERSION } from './peers'
import { startSpireStand } from './spire-stand'

const skip = interopSkip()
const SPIRE_TD = 'spiffe://spire.example'
const PLANT_TD = 'spiffe://plant.example'
const ID = {
  spireClient: `${SPIRE_TD}/client-app`,
  spireServer: `${SPIRE_TD}/server-app`,
  spireIntruder: `${SPIRE_TD}/intruder`,
  plantClient: `${PLANT_TD}/client-app`,
  plantServer: `${PLANT_TD}/server-app`,
  plantIntruder: `${PLANT_TD}/intruder`
}
// Each rule names the other trust domain's workload; the intruders are allowed nothing.
const POLICY = `version: 1
rules:
  - name: spire-client-to-plant-server
    from: [${ID.spireClient}]
    to: [${ID.plantServer}]
    action: allow
  - name: plant-client-to-spire-server
    from: [${ID.plantClient}]
    to: [${ID.spireServer}]
    action: allow
`
const NO_BUNDLE = 'ERR_X509_SVID_NO_BUNDLE'

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`
const sha256 = (der: Buffer): string => createHash('sha256').update(der).digest('hex')

/** A plain HTTP request, as an app sends it to its sidecar; status 0 when the connection failed (the TCP outbound closes it). */
async function get (port: number, path: string): Promise<{ status: number, body: string }> {
  return await new Promise(resolve => {
    request({ host: '127.0.0.1', port, path, agent: false }, res => {
      let body = ''
      res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk }).on('end', () => { resolve({ status: res.statusCode ?? 0, body }) })
    }).on('error', err => { resolve({ status: 0, body: err.message }) }).end()
  })
}

/** The X-Forwarded-Client-Cert the reporting app was given, parsed. */
const xfccOf = (body: string): unknown => parseXfcc((JSON.parse(body) as { headers: Record<string, string> }).headers['x-forwarded-client-cert'] ?? '')
/** The trust domains whose bundles a sidecar holds now. */
const trustDomains = (s: RunningSidecar): string[] => [...s.sidecar.services.identity.current?.context.bundles ?? []].map(b => `spiffe://${b.trustDomain.name}`).sort()
const leafOf = (s: RunningSidecar): Buffer => s.sidecar.services.identity.current?.context.svid.chain[0] ?? Buffer.alloc(0)
/** Log lines of `event` since index `from`. */
const logged = (s: RunningSidecar, event: string, from = 0): Array<Record<string, unknown>> => s.logs.slice(from).filter(l => l.event === event)
/** The first `handshake_failed` line for a missing bundle since index `from`, or what was logged instead. */
const noBundleLogged = (s: RunningSidecar, from = 0): Record<string, unknown> | string =>
  logged(s, 'handshake_failed', from).find(l => l.reason === NO_BUNDLE) ?? `handshake_failed reasons logged: ${logged(s, 'handshake_failed', from).map(l => String(l.reason)).join(', ')}`
/** How many handshakes a sidecar's listener failed for `reason` (chaperone_handshake_failures_total). */
async function handshakeFailures (s: RunningSidecar, listener: string, reason: string): Promise<number> {
  const { values } = await s.sidecar.services.metrics.handshakeFailures.get()
  return values.find(v => v.labels.listener === listener && v.labels.reason === reason)?.value ?? 0
}

/** Waits until a running sidecar holds exactly these trust domains' bundles (pushed by its Workload API). */
async function bundlesBecome (s: RunningSidecar, wanted: string[], ms = 30_000): Promise<void> {
  await waitFor(`the bundles of ${wanted.join(', ')} at ${s.sidecar.services.identity.current?.context.spiffeId.toString() ?? '?'}`, ms, async () =>
    trustDomains(s).join() === [...wanted].sort().join() ? true : undefined)
}

void t.test(`Chaperone (plant.example) and SPIRE ${SPIRE_VERSION} (spire.example) federated by static bundles: calls cross both ways`, { skip, timeout: 600_000 }, async t => {
  const startedAt = Date.now()
  if (!existsSync(CLI_BIN)) await must('npm', ['run', 'build', '--silent'], { cwd: join(__dirname, '..', '..'), timeoutMs: 600_000 })
  const spire = await startSpireStand(t, { x509SvidTtl: 600 }) // no rotation within the test: it is not about rotation
  const mesh = await startMesh(POLICY)
  t.teardown(async () => { await mesh.close() })
  // The mesh's agent serves its admin API here (mesh.ts); the CLI reaches it as an operator's would.
  const chaperone = async (...args: string[]): Promise<string> => {
    const result = await runCli([...args, '--admin-socket', mesh.adminSocket])
    if (result.status !== 0) throw new Error(`chaperone ${args.join(' ')} exited ${result.status}: ${result.stderr}`)
    return result.stdout
  }
  const uid = `unix:uid:${process.getuid?.() ?? 0}`

  // The README's recipe. Ours, to them; theirs, to us; our workloads federate with theirs.
  const ours = join(spire.dir, 'plant.pem')
  writeFileSync(ours, await chaperone('bundle', 'show', '--format', 'pem'))
  await spire.server('bundle', 'set', '-format', 'pem', '-id', PLANT_TD, '-path', ours)
  const theirs = join(spire.dir, 'spire.pem')
  const spireBundle = await spire.bundlePem()
  writeFileSync(theirs, spireBundle)
  t.match(await chaperone('bundle', 'set', '--id', SPIRE_TD, '--path', theirs), `set the federated bundle of ${SPIRE_TD}: 1 X.509 authority`, 'bundle set takes SPIRE\'s bundle')
  t.match(await chaperone('bundle', 'list'), new RegExp(`Trust domain\\s*: ${SPIRE_TD}\\nX\\.509 authorities : 1\\n`), 'bundle list shows it')
  for (const spiffeId of [ID.plantClient, ID.plantServer]) await chaperone('entry', 'create', '--spiffe-id', spiffeId, '--selector', uid, '--federates-with', SPIRE_TD)
  // SPIRE's entries start WITHOUT federatesWith: the first subtest shows what that breaks. (All entries on either
  // side are this process's: a workload gets the union of its entries' federated bundles, so they change together.)
  const spireEntries = new Map<string, string>()
  for (const spiffeId of [ID.spireClient, ID.spireServer, ID.spireIntruder]) spireEntries.set(spiffeId, await spire.createEntry({ spiffeId, selectors: [uid] }))
  await spire.waitForSvids([ID.spireClient, ID.spireServer, ID.spireIntruder])

  const app = await reportingApp()
  t.teardown(() => { app.server.close() })
  const inboundTo = `127.0.0.1:0=127.0.0.1:${app.port}`
  const toward = (server: RunningSidecar, id: string): string => `127.0.0.1:0=127.0.0.1:${server.port('inbound-1')}@${id},port=${app.port}`
  // Server sidecars, one per trust domain, in front of the same reporting app.
  const plantServer = await mesh.startSidecar(ID.plantServer, { inboundHttp: [inboundTo] })
  const spireServer = await mesh.startSidecar(ID.spireServer, { workloadApi: spire.workloadApi, inboundHttp: [inboundTo] })
  // SPIRE's client: TCP out (a new mTLS connection per app connection: outbound-1) and HTTP out (pooled: outbound-2).
  const spireClient = await mesh.startSidecar(ID.spireClient, { workloadApi: spire.workloadApi, outbound: [toward(plantServer, ID.plantServer)], outboundHttp: [toward(plantServer, ID.plantServer)] })
  const plantClient = await mesh.startSidecar(ID.plantClient, { outboundHttp: [toward(spireServer, ID.spireServer)] })
  t.comment(`SPIRE, the Chaperone agent and four sidecars up in ${seconds(Date.now() - startedAt)} (including any build)`)

  await t.test('SPIRE\'s entries without federatesWith: its sidecars have no plant.example bundle, and handshakes fail both ways', async t => {
    t.same(trustDomains(spireClient), [SPIRE_TD], 'SPIRE gave its client no plant.example bundle')
    t.same(trustDomains(plantServer), [PLANT_TD, SPIRE_TD], 'our server has the spire.example bundle the CLI set')
    const held = plantServer.sidecar.services.identity.current?.context.bundles
    t.same([...held ?? []].find(b => b.trustDomain.name === 'spire.example')?.x509.authorities.map(a => a.raw.toString('base64')),
      [new X509Certificate(spireBundle).raw.toString('base64')], 'and it is SPIRE\'s CA')
    const seenBefore = app.seen.length

    const out = await get(spireClient.port('outbound-2'), '/v1/hello')
    t.equal(out.status, 502, `SPIRE client → our server: refused by the client sidecar: ${out.body}`)
    t.match(noBundleLogged(spireClient), { direction: 'outbound', err: /plant\.example/ }, 'which logs handshake_failed, no bundle for plant.example')

    const back = await get(plantClient.port('outbound-1'), '/v1/hello')
    t.equal(back.status, 502, `our client → SPIRE server: refused by the server sidecar: ${back.body}`)
    t.match(noBundleLogged(spireServer), { direction: 'inbound', err: /plant\.example/ }, 'which logs handshake_failed, no bundle for plant.example')
    t.equal(app.seen.length, seenBefore, 'the app saw neither')
  })

  await t.test('SPIRE\'s entries federate with plant.example: the bundle reaches its running sidecars, and calls cross both ways', async t => {
    for (const [spiffeId, entryId] of spireEntries) {
      await spire.server('entry', 'update', '-entryID', entryId, '-parentID', spire.nodeId, '-spiffeID', spiffeId, '-selector', uid, '-federatesWith', PLANT_TD)
    }
    const at = Date.now()
    await bundlesBecome(spireClient, [SPIRE_TD, PLANT_TD])
    await bundlesBecome(spireServer, [SPIRE_TD, PLANT_TD])
    t.comment(`SPIRE's agent pushed the plant.example bundle ${seconds(Date.now() - at)} after the entry update`)

    for (const [how, listener] of [['HTTP', 'outbound-2'], ['TCP', 'outbound-1']] as const) {
      const response = await get(spireClient.port(listener), '/v1/hello')
      t.equal(response.status, 200, `SPIRE client → our server, ${how} outbound: ${response.body}`)
      t.same(xfccOf(response.body), [{ by: ID.plantServer, hash: sha256(leafOf(spireClient)), uri: ID.spireClient }],
        `${how}: the app behind our sidecar is told the SPIRE workload's ID, and the hash of the certificate SPIRE issued it`)
    }
    const back = await get(plantClient.port('outbound-1'), '/v1/hello')
    t.equal(back.status, 200, `our client → SPIRE server: ${back.body}`)
    t.same(xfccOf(back.body), [{ by: ID.spireServer, hash: sha256(leafOf(plantClient)), uri: ID.plantClient }],
      'the app behind SPIRE\'s sidecar is told our workload\'s ID')
  })

  await t.test('a workload of the other trust domain that the policy allows nothing: refused and logged, at either side', async t => {
    /** curl with the given SVID straight to a server sidecar's inbound listener (-k: SVIDs name no host). */
    const curlAs = async (svid: { certPem: string, keyPem: string }, server: RunningSidecar): Promise<{ status: number | null, stderr: string }> => {
      const [cert, key] = [join(spire.dir, 'curl.pem'), join(spire.dir, 'curl.key')]
      writeFileSync(cert, svid.certPem)
      writeFileSync(key, svid.keyPem, { mode: 0o600 })
      return await run('curl', ['-sS', '-k', '--cert', cert, '--key', key, `https://127.0.0.1:${server.port('inbound-1')}/v1/hello`])
    }
    const spireIntruder = (await spire.fetchX509()).find(s => s.spiffeId === ID.spireIntruder)
    t.ok(spireIntruder, 'SPIRE issued the intruder an SVID')
    const refused = await curlAs(spireIntruder ?? { certPem: '', keyPem: '' }, plantServer)
    t.not(refused.status, 0, `SPIRE's intruder → our server: the connection is closed: ${refused.stderr.trim()}`)
    t.match(logged(plantServer, 'connection_refused').find(l => l.peer === ID.spireIntruder), { reason: 'no_allow_rule' }, 'our sidecar verified its chain to SPIRE\'s bundle, then refused it by policy')

    await mesh.register(ID.plantIntruder)
    const refusedBack = await curlAs(await mesh.svid(ID.plantIntruder), spireServer)
    t.not(refusedBack.status, 0, `our intruder → SPIRE's server: the connection is closed: ${refusedBack.stderr.trim()}`)
    t.match(logged(spireServer, 'connection_refused').find(l => l.peer === ID.plantIntruder), { reason: 'no_allow_rule' }, 'SPIRE\'s sidecar verified its chain to our bundle, then refused it by policy')
  })

  await t.test('`chaperone bundle delete` at run time: pushed to our sidecars, new connections from SPIRE\'s side refused; set again, let in', async t => {
    const logsFrom = plantServer.logs.length
    const failedBefore = await handshakeFailures(plantServer, 'inbound-1', NO_BUNDLE)
    t.match(await chaperone('bundle', 'delete', '--id', SPIRE_TD), `deleted the federated bundle of ${SPIRE_TD}`, 'bundle delete')
    t.match(await chaperone('bundle', 'list'), 'no federated bundles', 'bundle list shows none')
    await bundlesBecome(plantServer, [PLANT_TD], 10_000)
    t.pass('our running server sidecar lost the spire.example bundle')

    // The TCP outbound makes a new mTLS connection per app connection (the HTTP one may reuse a pooled connection,
    // which a bundle change leaves alone: it applies to new handshakes).
    const refused = await get(spireClient.port('outbound-1'), '/v1/hello')
    t.equal(refused.status, 0, `SPIRE client → our server: the connection is closed: ${refused.body}`)
    t.equal(await handshakeFailures(plantServer, 'inbound-1', NO_BUNDLE), failedBefore + 1, `our sidecar counted one ${NO_BUNDLE} handshake failure`)
    // The first such failure at this listener in the test: the log keeps one line per address and reason per 10 s.
    t.match(noBundleLogged(plantServer, logsFrom), { direction: 'inbound', err: /spire\.example/ }, 'and logged it')

    await chaperone('bundle', 'set', '--id', SPIRE_TD, '--path', theirs)
    await bundlesBecome(plantServer, [PLANT_TD, SPIRE_TD], 10_000)
    const again = await get(spireClient.port('outbound-1'), '/v1/hello')
    t.equal(again.status, 200, `set again: SPIRE client → our server answers: ${again.body}`)
    t.same(xfccOf(again.body), [{ by: ID.plantServer, hash: sha256(leafOf(spireClient)), uri: ID.spireClient }], 'naming the SPIRE workload')
  })
  t.comment(`in all ${seconds(Date.now() - startedAt)}`)
})
