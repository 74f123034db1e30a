/**
 * SPIRE's own server CLI, `spire-server entry …` and `spire-server healthcheck` at SPIRE_VERSION, pointed at the
 * Chaperone agent's SPIRE-compatible server socket, and the same commands against a real SPIRE server in the same
 * test: their outputs must be the same (entry IDs SPIRE makes up, and created_at, are masked on both sides). Then a
 * workload registered through SPIRE's API gets its SVID from our Workload API (`spire-agent api fetch x509`), and
 * deleting the entry ends it. Part of `npm run test:interop`.
 */
import t from 'tap'
import type { Test } from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { runCli } from '../helpers/cli'
import { run } from '../helpers/command'
import type { CommandResult } from '../helpers/command'
import { startAgentStand, STRANGER, TRUST_DOMAIN } from './agent-stand'
import type { AgentStand } from './agent-stand'
import { interopSkip, spireAgent, spireServer, SPIRE_VERSION } from './peers'
import { startSpireStand } from './spire-stand'
import type { SpireStand } from './spire-stand'

const skip = interopSkip()
const TD = TRUST_DOMAIN
const uid = process.getuid?.() ?? 0

/** Masks what differs between any two servers: the entry IDs they generate (UUIDv4) and the creation times. */
function masked (text: string): string {
  return text
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}/g, '<uuid>')
    .replace(/"created_at":\s*"?\d+"?/g, '"created_at": <time>')
}

type Runner = (args: readonly string[]) => Promise<CommandResult>

/**
 * A real SPIRE server and a Chaperone agent in the same trust domain, so that their outputs can be compared as they
 * are, and `same`: runs one command against both and expects the same exit status, stdout and stderr (masked).
 */
async function startBoth (t: Test): Promise<{
  spire: SpireStand, stand: AgentStand, ours: Runner, theirs: Runner,
  same: (t: Test, args: readonly string[], what: string, mask?: (text: string) => string) => Promise<CommandResult>
}> {
  const spire = await startSpireStand(t, { trustDomain: TD })
  const stand = await startAgentStand(t, `spiffe://${TD}/interop`)
  const ourSocket = stand.agent.config.serverSocket
  const ours: Runner = async args => await run(spire.serverBinary, [...args, '-socketPath', ourSocket], { timeoutMs: 30_000 })
  const theirs: Runner = async args => await spire.serverCommand(args)
  const same = async (t: Test, args: readonly string[], what: string, mask: (text: string) => string = masked): Promise<CommandResult> => {
    const [a, b] = [await theirs(args), await ours(args)]
    t.equal(b.status, a.status, `${what}: exit status (SPIRE: ${a.status})`)
    t.equal(mask(b.stdout), mask(a.stdout), `${what}: stdout`)
    t.equal(mask(b.stderr), mask(a.stderr), `${what}: stderr`)
    if (mask(b.stdout) !== mask(a.stdout) || mask(b.stderr) !== mask(a.stderr)) t.comment(`SPIRE:\n${a.stdout}${a.stderr}\nChaperone:\n${b.stdout}${b.stderr}`)
    return b
  }
  return { spire, stand, ours, theirs, same }
}

void t.test(`spire-server ${SPIRE_VERSION} entry commands against Chaperone's server socket, compared with a real SPIRE server`, { skip, timeout: 1_800_000 }, async t => {
  const { spire, stand, same, ours, theirs } = await startBoth(t)

  // SPIRE's stand registered its node alias; both servers start from no entries.
  const existing = [...(await spire.server('entry', 'show')).matchAll(/^Entry ID\s*:\s*(\S+)/gm)].map(m => m[1])
  for (const id of existing) await spire.server('entry', 'delete', '-entryID', id)
  for (const id of stand.agent.store.listEntries().map(e => e.id)) stand.agent.store.deleteEntry(id)
  // A bundle for other.example on both, so entries may federate with it.
  const otherPem = join(stand.dir, 'other.pem')
  writeFileSync(otherPem, stand.agent.ca.bundle().x509.toPem())
  await spire.server('bundle', 'set', '-format', 'pem', '-id', 'spiffe://other.example', '-path', otherPem)
  stand.agent.store.setFederatedBundle({ trustDomain: 'other.example', format: 'pem', bundle: stand.agent.ca.bundle().x509.toPem() })

  const parent = ['-parentID', `spiffe://${TD}/node`]
  await t.test('healthcheck', async t => {
    const healthy = await same(t, ['healthcheck'], 'healthcheck')
    t.equal(healthy.stdout, 'Server is healthy.\n')
  })

  await t.test('entry create with flags: every field', async t => {
    const created = await same(t, ['entry', 'create', ...parent, '-spiffeID', `spiffe://${TD}/web`, '-entryID', 'web-entry',
      '-selector', 'unix:gid:1000', '-selector', 'unix:uid:1000', '-x509SVIDTTL', '3600', '-jwtSVIDTTL', '300', '-dns', 'web.plant.example',
      '-federatesWith', 'spiffe://other.example', '-hint', 'web', '-admin', '-downstream', '-entryExpiry', '2000000000'], 'create with every flag')
    t.match(created.stdout, /^Entry ID {9}: web-entry\nSPIFFE ID {8}: spiffe:\/\/plant\.example\/web\n/)
    await same(t, ['entry', 'create', ...parent, '-spiffeID', `spiffe://${TD}/store`, '-selector', 'k8s:ns:default', '-storeSVID', '-output', 'json'], 'create with -storeSVID, -output json')
    await same(t, ['entry', 'create', ...parent, '-spiffeID', `spiffe://${TD}/plain`, '-selector', 'unix:uid:1001'], 'create with the needed flags only')
    await same(t, ['entry', 'create', '-node', '-spiffeID', `spiffe://${TD}/node-alias`, '-selector', 'x509pop:subject:cn:device-1'], 'a node alias (-node: parent /spire/server)')
  })

  await t.test('entry create with selectors out of order: both answer them sorted', async t => {
    const created = await same(t, ['entry', 'create', ...parent, '-spiffeID', `spiffe://${TD}/unsorted`, '-selector', 'unix:uid:3000', '-selector', 'unix:gid:3000'], 'unsorted selectors')
    t.match(created.stdout, /Selector {9}: unix:gid:3000\nSelector {9}: unix:uid:3000\n/)
  })

  await t.test('entry create with -data JSON', async t => {
    const data = join(stand.dir, 'entries.json')
    writeFileSync(data, JSON.stringify({
      entries: [
        { spiffe_id: `spiffe://${TD}/data/a`, parent_id: `spiffe://${TD}/node`, selectors: [{ type: 'unix', value: 'uid:1111' }], x509_svid_ttl: 200, jwt_svid_ttl: 30, admin: true, hint: 'internal' },
        { spiffe_id: `spiffe://${TD}/data/b`, parent_id: `spiffe://${TD}/node`, selectors: [{ type: 'unix', value: 'uid:1112' }], federates_with: ['spiffe://other.example'], dns_names: ['b.plant.example'] }
      ]
    }))
    await same(t, ['entry', 'create', '-data', data], 'create -data')
  })

  await t.test('our own CLI shows the same entries as spire-server, and which of them this agent serves', async t => {
    const theirView = await ours(['entry', 'show', '-output', 'json'])
    t.equal(theirView.status, 0, theirView.stderr)
    const spireEntries = (JSON.parse(theirView.stdout) as { entries: SpireJsonEntry[] }).entries
    const listed = await runCli(['entry', 'list', '--json', '--admin-socket', stand.agent.config.adminSocket])
    t.equal(listed.status, 0, listed.stderr)
    const ourEntries = JSON.parse(listed.stdout) as AdminEntry[]
    t.equal(ourEntries.length, spireEntries.length, `both list ${spireEntries.length} entries`)
    for (const theirs of spireEntries) {
      const mine = ourEntries.find(e => e.id === theirs.id)
      if (mine === undefined) { t.fail(`chaperone entry list lacks ${theirs.id}`); continue }
      t.same(fromAdmin(mine), fromSpireJson(theirs), `entry ${theirs.id}: the same fields both ways`)
      t.notOk(mine.served, `entry ${theirs.id} is parented off this agent: shown as not served`)
    }
    const shown = await runCli(['entry', 'show', 'web-entry', '--admin-socket', stand.agent.config.adminSocket])
    t.match(shown.stdout, /^Admin {9}: true\nDownstream {4}: true\n/m, 'admin and downstream shown')
    t.match(shown.stdout, `Served        : no: its parent ID spiffe://${TD}/node does not lead to this agent's ID (${stand.agent.store.agentId})`)
  })

  await t.test('entry create refused: a similar entry, a reserved SPIFFE ID, an entry ID taken', async t => {
    const similar = await same(t, ['entry', 'create', ...parent, '-spiffeID', `spiffe://${TD}/plain`, '-selector', 'unix:uid:1001'], 'similar entry')
    t.match(similar.stderr, 'Failed to create the following entry (code: AlreadyExists, msg: "similar entry already exists"):')
    await same(t, ['entry', 'create', ...parent, '-spiffeID', `spiffe://${TD}/spire/x`, '-selector', 'unix:uid:1'], 'reserved namespace')
    await same(t, ['entry', 'create', ...parent, '-spiffeID', `spiffe://${TD}/dup-id`, '-selector', 'unix:uid:2', '-entryID', 'web-entry'], 'an entry ID taken')
  })

  await t.test('entry create federating with a trust domain without a bundle: SPIRE refuses it, Chaperone accepts it (spire#7146)', async t => {
    const args = ['entry', 'create', ...parent, '-spiffeID', `spiffe://${TD}/lonely`, '-selector', 'unix:uid:1', '-federatesWith', 'spiffe://nowhere.example']
    const [refused, accepted] = [await theirs(args), await ours(args)]
    t.match(refused, { status: 1, stderr: 'unable to find federated bundle \\"spiffe://nowhere.example\\"' }, 'SPIRE refuses it')
    t.match(accepted, { status: 0, stdout: /^FederatesWith\s*: nowhere\.example$/m }, 'Chaperone stores it; the bundle is served once it arrives')
    const id = /^Entry ID\s*:\s*(\S+)$/m.exec(accepted.stdout)?.[1] ?? ''
    t.equal((await ours(['entry', 'delete', '-entryID', id])).status, 0, 'deleted again: both servers keep the same entries for what follows')
  })

  await t.test('entry show, with each filter, and entry count', async t => {
    const shows: Array<[string, string[]]> = [
      ['all', []],
      ['by entry ID', ['-entryID', 'web-entry']],
      ['by unknown entry ID', ['-entryID', 'no-such-entry']],
      ['by SPIFFE ID', ['-spiffeID', `spiffe://${TD}/web`]],
      ['by parent ID', parent],
      ['by selector (superset)', ['-selector', 'unix:uid:1000']],
      ['by selectors, exact', ['-selector', 'unix:uid:1000', '-selector', 'unix:gid:1000', '-matchSelectorsOn', 'exact']],
      ['by selectors, subset', ['-selector', 'unix:uid:1000', '-selector', 'unix:gid:1000', '-selector', 'unix:uid:1001', '-matchSelectorsOn', 'subset']],
      ['by selectors, any', ['-selector', 'unix:uid:1111', '-selector', 'unix:uid:1001', '-matchSelectorsOn', 'any']],
      ['by federates with', ['-federatesWith', 'spiffe://other.example']],
      ['by federates with, exact', ['-federatesWith', 'spiffe://other.example', '-matchFederatesWithOn', 'exact']],
      ['by hint', ['-hint', 'internal']],
      ['downstream', ['-downstream']],
      ['as JSON', ['-output', 'json']]
    ]
    for (const [what, args] of shows) await same(t, ['entry', 'show', ...args], `show ${what}`)
    for (const [what, args] of shows.filter(([what]) => !what.includes('entry ID') && what !== 'as JSON')) await same(t, ['entry', 'count', ...args], `count ${what}`)
  })

  await t.test('entry update replaces the entry; entry delete removes it, then cannot find it', async t => {
    const updated = await same(t, ['entry', 'update', '-entryID', 'web-entry', ...parent, '-spiffeID', `spiffe://${TD}/web2`, '-selector', 'unix:uid:2000', '-hint', 'renamed'], 'update')
    t.match(updated.stdout, /Revision {9}: 1\n/, 'the revision went up')
    await same(t, ['entry', 'show', '-entryID', 'web-entry'], 'show after update')
    await same(t, ['entry', 'update', '-entryID', 'no-such-entry', ...parent, '-spiffeID', `spiffe://${TD}/x`, '-selector', 'unix:uid:1'], 'update an unknown entry')
    await same(t, ['entry', 'delete', '-entryID', 'web-entry'], 'delete')
    await same(t, ['entry', 'delete', '-entryID', 'web-entry'], 'delete again')
    await same(t, ['entry', 'count'], 'count after delete')
  })
})

/** An entry as `spire-server entry show -output json` prints it (protojson of spire.api.types.Entry). */
interface SpireJsonEntry {
  id: string
  spiffe_id: { trust_domain: string, path: string }
  parent_id: { trust_domain: string, path: string }
  selectors: Array<{ type: string, value: string }>
  x509_svid_ttl?: number
  jwt_svid_ttl?: number
  federates_with?: string[]
  admin?: boolean
  downstream?: boolean
  expires_at?: string | number
  dns_names?: string[]
  revision_number?: string | number
  store_svid?: boolean
  hint?: string
  created_at?: string | number
}

/** An entry as `chaperone entry list --json` prints it (admin.proto's Entry). */
interface AdminEntry {
  id: string, spiffe_id: string, parent_id: string, selectors: string[], x509_svid_ttl: number, jwt_svid_ttl: number, dns_names: string[], hint: string,
  admin: boolean, downstream: boolean, store_svid: boolean, federates_with: string[], expires_at: number, revision: number, created_at: number, served: boolean
}

function fromSpireJson (e: SpireJsonEntry): Record<string, unknown> {
  return {
    spiffeId: `spiffe://${e.spiffe_id.trust_domain}${e.spiffe_id.path}`,
    parentId: `spiffe://${e.parent_id.trust_domain}${e.parent_id.path}`,
    selectors: e.selectors.map(s => `${s.type}:${s.value}`).sort(),
    dnsNames: e.dns_names ?? [],
    hint: e.hint ?? '',
    flags: [e.admin === true, e.downstream === true, e.store_svid === true],
    federatesWith: (e.federates_with ?? []).map(td => td.replace(/^spiffe:\/\//, '')).sort(),
    expiresAt: Number(e.expires_at ?? 0),
    revision: Number(e.revision_number ?? 0),
    createdAt: Number(e.created_at ?? 0)
  }
}

function fromAdmin (e: AdminEntry): Record<string, unknown> {
  return {
    spiffeId: e.spiffe_id,
    parentId: e.parent_id,
    selectors: [...e.selectors].sort(),
    dnsNames: e.dns_names,
    hint: e.hint,
    flags: [e.admin, e.downstream, e.store_svid],
    federatesWith: [...e.federates_with].sort(),
    expiresAt: e.expires_at,
    revision: e.revision,
    createdAt: e.created_at
  }
}

/** The agent's lines of `agent list`/`agent show`: what differs between a join-token SPIRE agent and ours. */
function maskedAgent (text: string): string {
  return text
    .replace(/spiffe:\/\/[^/\s]+\/spire\/agent\/\S+/g, '<agent ID>')
    .replace(/^(Attestation type\s*:).*$/gm, '$1 <type>')
    .replace(/^(Expiration time\s*:).*$/gm, '$1 <time>')
    .replace(/^(Serial number\s*:).*$/gm, '$1 <serial>')
    .replace(/^(Selectors\s*:.*\n)((?:\s+\S+:\S.*\n)*)/gm, '$1')
    .replace(/^Selectors\s*:.*\n/gm, '')
    .replace(/^(Can re-attest\s*:).*$/gm, '$1 <bool>')
}

/**
 * Our own trust domain's bundle: each server's CA made its own certificates and keys, and its own sequence; our CA
 * publishes a refresh hint, where SPIRE's stored bundle has none (SPIRE's bundle endpoint adds its hint when serving).
 */
function maskedBundle (text: string): string {
  return text
    .replace(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/g, '<certificate>\n')
    .replace(/"keys":\s*\[[\s\S]*?\n {4}\]/g, '"keys": <keys>')
    .replace(/"spiffe_sequence":\s*\d+/g, '"spiffe_sequence": <n>')
    .replace(/,\n\s*"spiffe_refresh_hint":\s*\d+/g, '')
    .replace(/(<certificate>\n)+/g, '<certificate>\n')
}

void t.test(`spire-server ${SPIRE_VERSION} bundle and agent commands against Chaperone's server socket, compared with a real SPIRE server`, { skip, timeout: 1_800_000 }, async t => {
  const { stand, ours, theirs, same } = await startBoth(t)
  const otherPem = join(stand.dir, 'other.pem')
  writeFileSync(otherPem, stand.agent.ca.bundle().x509.toPem())
  const otherDoc = join(stand.dir, 'other.json')
  writeFileSync(otherDoc, stand.agent.ca.bundle().marshal())

  await t.test('bundle show: our own trust domain\'s (each server\'s CA made its own certificates and keys: masked)', async t => {
    const shown = await same(t, ['bundle', 'show'], 'bundle show', maskedBundle)
    t.match(shown.stdout, '-----BEGIN CERTIFICATE-----')
    await same(t, ['bundle', 'show', '-format', 'spiffe'], 'bundle show -format spiffe', maskedBundle)
    await same(t, ['bundle', 'count'], 'bundle count before any is set')
  })

  await t.test('bundle set, list, count, delete for federated bundles: identical', async t => {
    await same(t, ['bundle', 'set', '-format', 'pem', '-id', 'spiffe://other.example', '-path', otherPem], 'bundle set -format pem')
    await same(t, ['bundle', 'set', '-format', 'spiffe', '-id', 'spiffe://other2.example', '-path', otherDoc], 'bundle set -format spiffe')
    await same(t, ['bundle', 'set', '-format', 'pem', '-id', `spiffe://${TD}`, '-path', otherPem], 'bundle set for our own trust domain')
    await same(t, ['bundle', 'list'], 'bundle list')
    await same(t, ['bundle', 'list', '-format', 'spiffe'], 'bundle list -format spiffe')
    await same(t, ['bundle', 'list', '-id', 'spiffe://other.example'], 'bundle list -id')
    await same(t, ['bundle', 'list', '-id', 'spiffe://nowhere.example'], 'bundle list -id of no bundle')
    await same(t, ['bundle', 'count'], 'bundle count')
    await same(t, ['entry', 'create', '-parentID', `spiffe://${TD}/node`, '-spiffeID', `spiffe://${TD}/fed`, '-selector', 'unix:uid:4242', '-federatesWith', 'spiffe://other.example'], 'an entry federating with it')
    await same(t, ['bundle', 'delete', '-id', 'spiffe://other.example'], 'bundle delete while an entry federates (restrict)')
    await same(t, ['bundle', 'delete', '-id', 'spiffe://other.example', '-mode', 'dissociate'], 'bundle delete -mode dissociate')
    await same(t, ['bundle', 'delete', '-id', 'spiffe://other2.example'], 'bundle delete')
    await same(t, ['bundle', 'delete', '-id', 'spiffe://other2.example'], 'bundle delete again')
    await same(t, ['bundle', 'list'], 'bundle list after delete')
    await same(t, ['bundle', 'count'], 'bundle count after delete')
  })

  await t.test('agent list, show, count: one agent each (its ID, attestation type, serial, expiry, selectors masked)', async t => {
    await same(t, ['agent', 'count'], 'agent count')
    const listed = await same(t, ['agent', 'list'], 'agent list', maskedAgent)
    t.match(listed.stdout, stand.agent.store.agentId, 'ours lists this node\'s agent ID, the parent ID of the entries it serves')
    const theirId = /spiffe:\/\/\S+\/spire\/agent\/\S+/.exec((await theirs(['agent', 'list'])).stdout)?.[0] ?? ''
    const [a, b] = [await theirs(['agent', 'show', '-spiffeID', theirId]), await ours(['agent', 'show', '-spiffeID', stand.agent.store.agentId])]
    t.equal(b.status, a.status, 'agent show: exit status')
    t.equal(maskedAgent(b.stdout), maskedAgent(a.stdout), 'agent show: stdout')
    await same(t, ['agent', 'show', '-spiffeID', `spiffe://${TD}/spire/agent/x509pop/nobody`], 'agent show of no agent')
  })
})

void t.test(`a workload registered with spire-server ${SPIRE_VERSION} gets its SVID from Chaperone's Workload API; deleting the entry ends it`, { skip, timeout: 1_800_000 }, async t => {
  const stand = await startAgentStand(t, `spiffe://${TD}/interop-stand`)
  const server = stand.placePeer(await spireServer(), 'spire-server')
  const agentCli = stand.placePeer(await spireAgent(), 'spire-agent')
  const serverCli = async (...args: string[]): Promise<{ status: number | null, out: string }> => await stand.runPeer(server, [...args, '-socketPath', stand.agent.config.serverSocket])
  const fetched = async (): Promise<string> => (await stand.runPeer(agentCli, ['api', 'fetch', 'x509', '-socketPath', stand.socket])).out

  const agentId = stand.agent.store.agentId
  const created = await serverCli('entry', 'create', '-parentID', agentId, '-spiffeID', `spiffe://${TD}/registered-with-spire`, '-selector', `unix:uid:${uid}`)
  t.equal(created.status, 0, created.out)
  const entryId = /^Entry ID\s*:\s*(\S+)/m.exec(created.out)?.[1] ?? ''
  t.match(created.out, `Parent ID        : ${agentId}`, 'parented on this agent\'s ID')
  const elsewhere = await serverCli('entry', 'create', '-parentID', `spiffe://${TD}/spire/agent/x509pop/another-device`, '-spiffeID', `spiffe://${TD}/for-another-agent`, '-selector', `unix:uid:${uid}`)
  t.equal(elsewhere.status, 0, elsewhere.out)

  const before = await fetched()
  t.match(before, `SPIFFE ID:\t\tspiffe://${TD}/registered-with-spire`, 'spire-agent api fetch x509 gets it from our Workload API')
  t.notMatch(before, 'for-another-agent', 'an entry parented on another agent is stored, never issued here')

  const deleted = await serverCli('entry', 'delete', '-entryID', entryId)
  t.equal(deleted.status, 0, deleted.out)
  const after = await fetched()
  t.notMatch(after, 'registered-with-spire', 'deleted: no longer issued')
  t.match(after, `spiffe://${TD}/interop-stand`, 'the workload\'s other entry is still served')
})

void t.test(`spire-server ${SPIRE_VERSION} as an orchestrator with its own user: let in by an admin entry, refused in SPIRE's words without one`, { skip, timeout: 1_800_000 }, async t => {
  const stand = await startAgentStand(t, `spiffe://${TD}/interop-stand`, { serverSocketAdminWorkloads: true })
  const server = stand.placePeer(await spireServer(), 'spire-server')
  const asOrchestrator = async (...args: string[]): Promise<{ status: number | null, out: string }> =>
    await stand.runPeer(server, [...args, '-socketPath', stand.agent.config.serverSocket], { asStranger: true })

  const refused = await asOrchestrator('entry', 'count')
  t.not(refused.status, 0)
  t.match(refused.out, 'rpc error: code = PermissionDenied desc = authorization denied for method /spire.api.server.entry.v1.Entry/CountEntries', 'no admin entry: refused as SPIRE refuses')

  const orchestrator = stand.agent.store.createEntry({ spiffeId: `spiffe://${TD}/orchestrator`, selectors: [`unix:uid:${STRANGER}`], admin: true })
  const created = await asOrchestrator('entry', 'create', '-parentID', stand.agent.store.agentId, '-spiffeID', `spiffe://${TD}/registered-by-orchestrator`, '-selector', 'unix:uid:1234')
  t.equal(created.status, 0, created.out)
  t.ok(stand.agent.store.listEntries({ spiffeId: `spiffe://${TD}/registered-by-orchestrator` }).length === 1, 'an admin workload registers an app')
  const health = await asOrchestrator('healthcheck')
  t.not(health.status, 0, 'health stays for local callers, as in SPIRE')

  stand.agent.store.updateEntry(orchestrator.id, { admin: false })
  t.match((await asOrchestrator('entry', 'count')).out, 'authorization denied', 'admin taken away: refused at once')
})
