/**
 * Two Chaperone sidecars on a real SPIRE deployment (spire-server and spire-agent at SPIRE_VERSION, see
 * spire-stand.ts): both take their SVIDs from SPIRE's Workload API, nothing from a Chaperone agent. A client's
 * requests go client sidecar → mutual TLS → server sidecar (HTTP mode) → a reporting app. Proves: mTLS with
 * SPIRE-issued SVIDs; the app told the caller's SPIFFE ID (X-Forwarded-Client-Cert); the policy at both ends (a
 * denied path, and an ID SPIRE issues but the policy allows nothing, refused and logged); then, under continuous
 * load over keep-alive and new connections, 0 failed requests across at least 3 SVID rotations of each sidecar
 * (serials checked against `spire-agent api fetch x509`) and across a restart of the SPIRE agent. Part of
 * `npm run test:interop`.
 *
 * Timing: SPIRE's agent renews an X509-SVID once less than half its lifetime is left (±10 %), checking every 5 s;
 * the lifetime counts from NotBefore, which the server backdates 10 s. With a 30 s TTL (lifetime 40 s) each SVID
 * is renewed 10–15 s after issue with 13–22 s of validity left: 3 rotations take under a minute, and the SVID in
 * use always outlives an agent restart plus the sidecar's reconnection backoff (0.5, 1, 2, 4 s …). About a minute
 * in all once SPIRE is built.
 */
import t from 'tap'
import type { Test } from 'tap'
import { createHash, X509Certificate } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import pino from 'pino'
import { loadSidecarConfig } from '../../proxy/config'
import type { SidecarFlags } from '../../proxy/config'
import { Sidecar } from '../../proxy/sidecar'
import { parseXfcc } from '../../spiffe/peer-header'
import { run, waitFor } from '../helpers/command'
import { reportingApp } from '../helpers/mesh'
import { startLoad } from './http-load'
import { interopSkip, SPIRE_VERSION } from './peers'
import { startSpireStand } from './spire-stand'
import type { FetchedSvid, SpireStand } from './spire-stand'

const skip = interopSkip()
/** X509-SVID TTL in seconds (see the timing note above). */
const TTL = 30
const ROTATIONS = 3

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

interface SidecarUnderTest {
  readonly sidecar: Sidecar
  /** Its JSON log lines (info and up), parsed. */
  readonly logs: Array<Record<string, unknown>>
  port: (listener: string) => number
  /** The serial of the SVID it presents now. */
  serial: () => string
  /** Each SVID it took, in order: when, and its serial. */
  readonly svids: Array<{ at: number, serial: string }>
}

/** A sidecar in this process whose Workload API is SPIRE's agent; stopped when `t` ends. */
async function startSidecar (t: Test, spire: SpireStand, policy: string, id: string, flags: SidecarFlags): Promise<SidecarUnderTest> {
  const logs: Array<Record<string, unknown>> = []
  const logger = pino({ level: 'info' }, { write: (line: string) => { logs.push(JSON.parse(line) as Record<string, unknown>) } })
  const file = join(spire.dir, `sidecar-${id.split('/').at(-1) ?? ''}.json`)
  writeFileSync(file, JSON.stringify({ admin: '127.0.0.1:0', drain: 2, readyTimeout: 30 }))
  const sidecar = await Sidecar.start(loadSidecarConfig(file, { workloadApi: spire.workloadApi, policy, spiffeId: id, ...flags }), logger)
  t.teardown(async () => {
    await sidecar.stop(0)
    if (!t.passing()) t.comment(`${id}'s warnings and errors:\n${logs.filter(l => Number(l.level) >= 40).slice(-30).map(l => JSON.stringify(l)).join('\n')}`)
  })
  const serial = (): string => new X509Certificate(sidecar.services.identity.current?.context.svid.chain[0] ?? Buffer.alloc(0)).serialNumber
  const svids = [{ at: Date.now(), serial: serial() }]
  // A change may be the bundle alone: only a new leaf counts as a new SVID.
  sidecar.services.identity.on('change', () => { if (serial() !== svids.at(-1)?.serial) svids.push({ at: Date.now(), serial: serial() }) })
  const port = (listener: string): number => Number(sidecar.addresses()[listener]?.split(':').at(-1))
  return { sidecar, logs, port, serial, svids }
}

/** A plain HTTP request, as an app sends it to its sidecar. */
async function get (port: number, path: string): Promise<{ status: number, body: string }> {
  return await new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path, agent: false }, res => {
      let body = ''
      res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk }).on('end', () => { resolve({ status: res.statusCode ?? 0, body }) })
    }).on('error', reject).end()
  })
}

const sha256 = (der: Buffer): string => createHash('sha256').update(der).digest('hex')
const headersOf = (body: string): Record<string, string> => (JSON.parse(body) as { headers: Record<string, string> }).headers

void t.test(`Chaperone sidecars on SPIRE ${SPIRE_VERSION}: mTLS, policy, XFCC, rotations and an agent restart under load`, { skip, timeout: 1_800_000 }, async t => {
  const startedAt = Date.now()
  const spire = await startSpireStand(t, { x509SvidTtl: TTL })
  t.comment(`SPIRE server and agent up in ${seconds(Date.now() - startedAt)} (including any build)`)
  const td = `spiffe://${spire.trustDomain}`
  const ID = { client: `${td}/client`, server: `${td}/server`, intruder: `${td}/intruder` }
  // The sidecars run in this process, so all three IDs are this uid's; each sidecar picks its own with `spiffeId`.
  const uid = process.getuid?.() ?? 0
  for (const spiffeId of Object.values(ID)) await spire.createEntry({ spiffeId, selectors: [`unix:uid:${uid}`], x509SvidTtl: TTL })
  await spire.waitForSvids(Object.values(ID))

  const policy = join(spire.dir, 'policy.yaml')
  writeFileSync(policy, `version: 1
rules:
  - name: client-calls-server
    from: [${ID.client}]
    to: [${ID.server}]
    action: allow
  - name: no-admin
    from: ['*']
    to: [${ID.server}]
    http: { paths: [/admin*] }
    action: deny
`)
  const app = await reportingApp()
  t.teardown(() => { app.server.close() })
  const server = await startSidecar(t, spire, policy, ID.server, { inboundHttp: [`127.0.0.1:0=127.0.0.1:${app.port}`] })
  const toServer = `127.0.0.1:0=127.0.0.1:${server.port('inbound-1')}@${ID.server},port=${app.port}`
  // Two ways out: TCP (each app connection its own mTLS connection) and HTTP (upstream connections pooled).
  const client = await startSidecar(t, spire, policy, ID.client, { outbound: [toServer], outboundHttp: [toServer] })
  const viaTcp = client.port('outbound-1')
  const viaHttp = client.port('outbound-2')
  t.comment(`sidecars ready ${seconds(Date.now() - startedAt)} after start`)

  await t.test('an allowed call: mutual TLS with SPIRE\'s SVIDs, and the app told the caller\'s SPIFFE ID', async t => {
    const root = new X509Certificate(await spire.bundlePem()) // one CA: no CA rotation in a 24 h ca_ttl
    for (const [name, sidecar] of [['client', client], ['server', server]] as const) {
      const context = sidecar.sidecar.services.identity.current?.context
      t.equal(context?.spiffeId.toString(), ID[name], `the ${name} sidecar took its own ID from SPIRE's agent`)
      const leaf = new X509Certificate(context?.svid.chain[0] ?? Buffer.alloc(0))
      t.ok(leaf.checkIssued(root) && leaf.verify(root.publicKey), `the ${name} sidecar's SVID is signed by SPIRE's CA (bundle show)`)
    }
    for (const [how, port] of [['HTTP', viaHttp], ['TCP', viaTcp]] as const) {
      const response = await get(port, '/v1/hello')
      t.equal(response.status, 200, `${how} outbound: ${response.body}`)
      const leaf = client.sidecar.services.identity.current?.context.svid.chain[0] ?? Buffer.alloc(0)
      t.same(parseXfcc(headersOf(response.body)['x-forwarded-client-cert']), [{ by: ID.server, hash: sha256(leaf), uri: ID.client }],
        `${how} outbound: the app sees the client's ID, and the hash of the very certificate SPIRE gave it`)
    }
  })

  await t.test('the policy: a denied path at either end, and an ID SPIRE issues that the policy allows nothing', async t => {
    const seenBefore = app.seen.length
    const atClient = await get(viaHttp, '/admin/users')
    t.equal(atClient.status, 403, 'HTTP outbound: the client sidecar refuses it')
    t.match(JSON.parse(atClient.body), { error: 'denied by policy', rule: 'no-admin' }, 'naming the rule')
    t.match(client.logs.find(l => l.event === 'denied'), { direction: 'outbound', peer: ID.server, path: '/admin/users', rule: 'no-admin' }, 'and logs it')
    const atServer = await get(viaTcp, '/admin/users')
    t.equal(atServer.status, 403, 'TCP outbound: the server sidecar refuses it')
    t.match(server.logs.find(l => l.event === 'denied'), { direction: 'inbound', peer: ID.client, path: '/admin/users', rule: 'no-admin' }, 'and logs it')
    t.equal(app.seen.slice(seenBefore).filter(r => r.url?.startsWith('/admin') === true).length, 0, 'the app saw neither')

    // Straight to the server sidecar with curl and SVIDs SPIRE's own client wrote (-k: SVIDs name no host).
    const svids = await spire.fetchX509()
    const curlAs = async (id: string): Promise<{ status: number | null, stdout: string, stderr: string }> => {
      const svid = svids.find(s => s.spiffeId === id) as FetchedSvid
      const [cert, key] = [join(spire.dir, 'curl.pem'), join(spire.dir, 'curl.key')]
      writeFileSync(cert, svid.certPem)
      writeFileSync(key, svid.keyPem, { mode: 0o600 })
      return await run('curl', ['-sS', '-k', '--cert', cert, '--key', key, `https://127.0.0.1:${server.port('inbound-1')}/v1/hello`])
    }
    const asClient = await curlAs(ID.client)
    t.equal(asClient.status, 0, `with the client's SVID curl gets an answer: ${asClient.stderr}`)
    t.match(headersOf(asClient.stdout)['x-forwarded-client-cert'], `;URI=${ID.client}`, 'and the app is told it was the client')
    const asIntruder = await curlAs(ID.intruder)
    t.not(asIntruder.status, 0, `with the intruder's SVID the connection is closed: ${asIntruder.stderr.trim()}`)
    t.match(server.logs.find(l => l.event === 'connection_refused'), { reason: 'no_allow_rule', peer: ID.intruder }, 'and the refusal names the peer')
  })

  // Keep-alive and new connections, through both outbound listeners; every answer must name the client.
  const hashes = new Set<string>()
  const load = startLoad([
    ...[1, 2, 3].map(n => ({ name: `http-keepalive-${n}`, port: viaHttp, keepAlive: true })),
    ...[1, 2].map(n => ({ name: `http-new-${n}`, port: viaHttp, keepAlive: false })),
    ...[1, 2, 3].map(n => ({ name: `tcp-new-${n}`, port: viaTcp, keepAlive: false }))
  ], {
    path: '/v1/load',
    pauseMs: 10,
    check: body => {
      const [xfcc] = parseXfcc(headersOf(body)['x-forwarded-client-cert'] ?? '')
      if (xfcc?.uri !== ID.client || xfcc.by !== ID.server) return `X-Forwarded-Client-Cert names ${xfcc?.uri} by ${xfcc?.by}`
      hashes.add(xfcc.hash ?? '')
      return undefined
    }
  })
  t.teardown(async () => { await load.stop() })
  const loadAt = Date.now()
  /** What the sidecars present is what SPIRE's own client gets now (retried: a rotation may fall in between). */
  const sameAsSpire = async (t: Test): Promise<void> => {
    const serials = async (): Promise<Record<string, string | undefined>> => {
      const svids = await spire.fetchX509()
      return { client: svids.find(s => s.spiffeId === ID.client)?.serial, server: svids.find(s => s.spiffeId === ID.server)?.serial }
    }
    let spireSerials = await serials()
    for (let tries = 0; tries < 10 && (spireSerials.client !== client.serial() || spireSerials.server !== server.serial()); tries++) {
      await sleep(1000)
      spireSerials = await serials()
    }
    t.same({ client: client.serial(), server: server.serial() }, spireSerials, 'each sidecar presents the SVID spire-agent api fetch x509 shows for its ID')
  }
  const failuresText = (): string => load.failures.slice(0, 20).map(f => `${f.at.toISOString()} ${f.client}: ${f.reason}`).join('\n')

  await t.test(`under load: ${ROTATIONS} SVID rotations of each sidecar, 0 failed requests`, async t => {
    const rotations = (s: SidecarUnderTest): number => s.svids.filter(svid => svid.at > loadAt).length
    await waitFor(`${ROTATIONS} rotations of each sidecar`, 5 * ROTATIONS * TTL * 1000, async () =>
      rotations(client) >= ROTATIONS && rotations(server) >= ROTATIONS ? true : undefined)
    const counts = load.counts()
    const elapsed = Date.now() - loadAt
    t.comment(`${counts.ok} requests answered in ${seconds(elapsed)} (${Math.round(counts.ok / elapsed * 1000)}/s); rotations: client ${rotations(client)}, server ${rotations(server)}; ${hashes.size} client certificates seen by the app`)
    t.equal(counts.failed, 0, `no failed request: ${failuresText()}`)
    t.ok(Object.values(counts.byClient).every(c => c.ok > 0), 'every load client got answers')
    t.ok(hashes.size > ROTATIONS, `the app saw the client's rotated certificates on the wire (${hashes.size} distinct)`)
    await sameAsSpire(t)
  })

  await t.test('under load: the SPIRE agent restarted, 0 failed requests', async t => {
    const logsAt = { client: client.logs.length, server: server.logs.length }
    const stopAt = Date.now()
    await spire.stopAgent()
    const downAt = Date.now()
    const held = { client: client.serial(), server: server.serial() }
    const okAtDown = load.counts().ok
    // Down long enough for every sidecar to notice, with requests served meanwhile.
    await sleep(3000)
    const okWhileDown = load.counts().ok - okAtDown
    t.ok(okWhileDown > 0, `${okWhileDown} requests answered while the agent was down`)
    t.same({ client: client.serial(), server: server.serial() }, held, 'the sidecars kept their SVIDs meanwhile')
    for (const [name, s] of [['client', client], ['server', server]] as const) {
      t.ok(s.logs.slice(logsAt[name]).some(l => l.event === 'workload_api_error'), `the ${name} sidecar noticed the agent was gone`)
    }
    const startAt = Date.now()
    await spire.startAgent()
    const upAt = Date.now()
    // The restarted agent went on with its stored SVID and key: no second attestation (the join token is spent).
    t.match(spire.logs(), /spire-agent: .*SVID loaded/, 'the restarted agent reloaded its own SVID from its data directory')
    // A restarted agent has no workload SVIDs in memory and mints new ones: any SVID from now on is the new process's.
    await waitFor('both sidecars to take an SVID from the restarted agent', 60_000, async () =>
      client.svids.some(s => s.at > startAt) && server.svids.some(s => s.at > startAt) ? true : undefined)
    const renewedAt = Math.max(...[client, server].map(s => s.svids.find(svid => svid.at > startAt)?.at ?? 0))
    await sleep(3000) // and some load on the new SVIDs
    await load.stop()
    const counts = load.counts()
    const elapsed = Date.now() - loadAt
    await sameAsSpire(t)
    t.comment(`agent restart: SIGTERM → exited ${seconds(downAt - stopAt)}, down ${seconds(startAt - downAt)}, started → healthy ${seconds(upAt - startAt)}; both sidecars on the restarted agent's SVIDs ${seconds(renewedAt - startAt)} after it was started`)
    t.comment(`load in all: ${counts.ok} requests answered, ${counts.failed} failed, in ${seconds(elapsed)} (${Math.round(counts.ok / elapsed * 1000)}/s); SVIDs taken: client ${client.svids.length}, server ${server.svids.length}`)
    t.equal(counts.failed, 0, `no failed request: ${failuresText()}`)
  })
  t.comment(`in all ${seconds(Date.now() - startedAt)}`)
})
