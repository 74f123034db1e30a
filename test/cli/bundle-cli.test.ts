import t from 'tap'
import { spawn } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { Agent } from '../../agent/agent'
import { loadAgentConfig } from '../../agent/config'
import { decodePem } from '../../spiffe/pem'
import { CLI_BIN, CLI_SKIP, runCli } from '../helpers/cli'
import type { Run } from '../helpers/cli'
import { foreignTrustDomain } from '../agent/store/fixtures/foreign-trust-domain'

// `chaperone bundle …` as an operator runs it (the built bin) against a real agent (in this process, on its sockets).
const dir = mkdtempSync(join(tmpdir(), 'chaperone-bundle-cli-'))
chmodSync(dir, 0o700)
const adminSocket = join(dir, 'admin.sock')
let agent: Agent | undefined
t.before(async () => {
  if (CLI_SKIP !== false) return
  agent = await Agent.start(loadAgentConfig(undefined, { trustDomain: 'plant.example', dataDir: join(dir, 'data'), socket: join(dir, 'workload.sock'), adminSocket, serverSocket: join(dir, 'server.sock') }), pino({ level: 'silent' }))
})
t.teardown(async () => {
  await agent?.stop()
  rmSync(dir, { recursive: true, force: true })
})

const other = foreignTrustDomain('other.example')
const third = foreignTrustDomain('third.example')

async function chaperone (...args: string[]): Promise<Run> {
  return await runCli([...args, '--admin-socket', adminSocket])
}

/** Runs the CLI with `input` on its standard input. */
async function chaperoneWithInput (input: string, ...args: string[]): Promise<Run> {
  const child = spawn(process.execPath, [CLI_BIN, ...args, '--admin-socket', adminSocket])
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  child.stdin.end(input)
  const status = await new Promise<number | null>(resolve => child.on('close', resolve))
  return { status, stdout, stderr }
}

function json<T> (run: Run): T {
  if (run.status !== 0) throw new Error(`chaperone failed (${String(run.status)}): ${run.stderr}`)
  return JSON.parse(run.stdout) as T
}

const ders = (pem: string): string[] => decodePem(pem).map(block => block.der.toString('base64'))

interface BundleJson { trust_domain: string, x509_authority_count: number, jwt_key_count: number, sequence: number, updated_at: number, pem: string, spiffe_json: string }

void t.test('bundle cli – set from a PEM file and from a SPIFFE document on stdin; list, show, delete', { skip: CLI_SKIP }, async t => {
  // This process's uid as a workload federating with other.example, before that trust domain has a bundle.
  const entry = await chaperone('entry', 'create', '--spiffe-id', 'spiffe://plant.example/fed', '--selector', `unix:uid:${process.getuid?.() ?? 0}`, '--federates-with', 'spiffe://other.example')
  t.equal(entry.status, 0, entry.stderr)
  t.match(entry.stdout, /\nFederates with: spiffe:\/\/other\.example\n/, 'an entry may name a trust domain with no bundle yet')
  const fetchX509 = async (): Promise<{ svids: Array<{ federated_trust_domains: string[] }> }> =>
    json(await runCli(['api', 'fetch', 'x509', '--socket', `unix://${join(dir, 'workload.sock')}`, '--json']))
  t.same((await fetchX509()).svids[0].federated_trust_domains, [], 'no federated bundle served yet')

  const pemFile = join(dir, 'other.pem')
  writeFileSync(pemFile, other.pem)
  const fromPem = await chaperone('bundle', 'set', '--id', 'spiffe://other.example', '--path', pemFile)
  t.equal(fromPem.status, 0, fromPem.stderr)
  t.equal(fromPem.stdout, 'set the federated bundle of spiffe://other.example: 1 X.509 authority, 0 JWT keys\n')
  const fromStdin = await chaperoneWithInput(third.spiffeJson({ sequence: 9 }), 'bundle', 'set', '--id', 'third.example', '--format', 'spiffe')
  t.equal(fromStdin.status, 0, fromStdin.stderr)
  t.equal(fromStdin.stdout, 'set the federated bundle of spiffe://third.example: 1 X.509 authority, 1 JWT key\n', 'standard input when --path is left out')
  const dash = json<BundleJson>(await chaperoneWithInput(other.spiffeJson({ jwtOnly: true }), 'bundle', 'set', '--id', 'spiffe://other.example', '--path', '-', '--format', 'spiffe', '--json'))
  t.match(dash, { trust_domain: 'other.example', x509_authority_count: 0, jwt_key_count: 1 }, '--path - reads standard input too; a set replaces')
  json<BundleJson>(await chaperone('bundle', 'set', '--id', 'spiffe://other.example', '--path', pemFile, '--json'))
  t.equal(agent?.store.findFederatedBundle('other.example')?.bundle.x509.size, 1, 'the agent holds what was set')
  t.same((await fetchX509()).svids[0].federated_trust_domains, ['other.example'], 'and serves it to the workload whose entry federates with it (only that one)')

  const list = json<BundleJson[]>(await chaperone('bundle', 'list', '--json'))
  t.match(list, [
    { trust_domain: 'other.example', x509_authority_count: 1, jwt_key_count: 0, sequence: 0 },
    { trust_domain: 'third.example', x509_authority_count: 1, jwt_key_count: 1, sequence: 9 }
  ])
  t.ok(list.every(b => Math.abs(b.updated_at - Date.now() / 1000) < 60), 'each with the time it was set')
  const text = await chaperone('bundle', 'list')
  t.equal(text.status, 0)
  t.match(text.stdout, /^2 federated bundles\n\nTrust domain {6}: spiffe:\/\/other\.example\nX\.509 authorities : 1\nJWT keys {10}: 0\nSequence {10}: -\nUpdated {11}: \d{4}-\d\d-\d\dT[\d:.]+Z\n\nTrust domain {6}: spiffe:\/\/third\.example\n/)

  const shownPem = await chaperone('bundle', 'show', '--id', 'spiffe://other.example')
  t.equal(shownPem.status, 0)
  t.same(ders(shownPem.stdout), [other.ca.certDer.toString('base64')], 'show --id: the federated bundle\'s authorities as PEM')
  const shownSpiffe = JSON.parse((await chaperone('bundle', 'show', '--id', 'third.example', '--format', 'spiffe')).stdout) as { keys: Array<{ use: string, kid?: string }>, spiffe_sequence: number }
  t.same(shownSpiffe.keys.map(k => [k.use, k.kid]), [['x509-svid', undefined], ['jwt-svid', third.kid]], 'or as the SPIFFE bundle')
  t.equal(shownSpiffe.spiffe_sequence, 9)
  const ours = await chaperone('bundle', 'show')
  t.same(ders(ours.stdout), agent?.ca.bundle().x509.authorities.map(cert => cert.raw.toString('base64')), 'without --id: our own bundle, as before')

  const deleted = await chaperone('bundle', 'delete', '--id', 'spiffe://other.example')
  t.equal(deleted.status, 0)
  t.equal(deleted.stdout, 'deleted the federated bundle of spiffe://other.example\n')
  t.same(json<BundleJson[]>(await chaperone('bundle', 'list', '--json')).map(b => b.trust_domain), ['third.example'])
  t.equal(agent?.store.findFederatedBundle('other.example'), undefined, 'the agent no longer holds it')
  t.same((await fetchX509()).svids[0].federated_trust_domains, [], 'nor serves it')
  for (const e of agent?.store.listEntries() ?? []) agent?.store.deleteEntry(e.id)
  json<BundleJson>(await chaperone('bundle', 'delete', '--id', 'third.example', '--json'))
  t.equal((await chaperone('bundle', 'list')).stdout, 'no federated bundles\n')
})

void t.test('bundle cli – bad input names the problem and exits 2; an unreachable agent exits 1', { skip: CLI_SKIP }, async t => {
  const pemFile = join(dir, 'other.pem')
  writeFileSync(pemFile, other.pem)
  const garbage = join(dir, 'garbage.pem')
  writeFileSync(garbage, 'not a bundle\n')
  const cases: Array<[string[], RegExp]> = [
    [['bundle', 'set', '--id', 'spiffe://plant.example', '--path', pemFile], /^chaperone: spiffe:\/\/plant\.example is this agent's own trust domain: its bundle is the CA's/],
    [['bundle', 'set', '--id', 'Other.example', '--path', pemFile], /lowercase/],
    [['bundle', 'set', '--id', 'other.example', '--path', garbage], /no PEM certificates found/],
    [['bundle', 'set', '--id', 'other.example', '--path', pemFile, '--format', 'spiffe'], /SPIFFE bundle for other\.example: not valid JSON/],
    [['bundle', 'set', '--id', 'other.example', '--path', pemFile, '--format', 'der'], /Allowed choices are pem, spiffe/],
    [['bundle', 'set', '--path', pemFile], /required option '--id <trust-domain>' not specified/],
    [['bundle', 'set', '--id', 'other.example', '--path', join(dir, 'absent.pem')], /^error: cannot read the bundle from .*absent\.pem: ENOENT/],
    [['bundle', 'show', '--id', 'unknown.example'], /no federated bundle is held for "unknown\.example"/],
    [['bundle', 'show', '--id', 'plant.example'], /own trust domain/],
    [['bundle', 'delete', '--id', 'unknown.example'], /no federated bundle is held for "unknown\.example"/],
    [['bundle', 'delete'], /required option '--id <trust-domain>' not specified/]
  ]
  for (const [args, reason] of cases) {
    const run = await chaperone(...args)
    t.equal(run.status, 2, `${args.join(' ')}: exit 2`)
    t.match(run.stderr, reason, `${args.join(' ')}: names the problem`)
  }
  t.same(agent?.store.listFederatedBundles(), [], 'nothing was set')
  const down = await runCli(['bundle', 'list', '--admin-socket', join(dir, 'absent.sock')])
  t.equal(down.status, 1, 'an unreachable agent is not bad input')
  t.match(down.stderr, /cannot reach the agent's admin API/)
})

void t.test('bundle cli – append authorities to our own bundle (PEM file, SPIFFE document on stdin), show them, remove them', { skip: CLI_SKIP }, async t => {
  // A second root and JWT key of our own trust domain, as during a CA migration.
  const second = foreignTrustDomain('plant.example')
  const pemFile = join(dir, 'second-root.pem')
  writeFileSync(pemFile, second.pem)
  const appended = await chaperone('bundle', 'append', '--path', pemFile)
  t.equal(appended.status, 0, appended.stderr)
  t.match(appended.stdout, new RegExp('^appended to the bundle of spiffe://plant\\.example: 1 X\\.509 authority, 0 JWT keys\\n' +
    'Bundle sequence {6}: \\d+\\nAppended authorities : \\n {2}served {3}X\\.509 .*CN=plant\\.example Root CA.* \\(sha256 [0-9a-f]{64}\\)\\n' +
    ' {11}appended \\d{4}-[\\d-]+T[\\d:.]+Z, until \\d{4}-[\\d-]+T[\\d:.]+Z\\n$'))
  t.ok(ders((await chaperone('bundle', 'show')).stdout).includes(second.ca.certDer.toString('base64')), 'bundle show: our bundle has the appended root')

  interface Appended { bundle: BundleJson, authorities: Array<{ kind: string, sha256: string, key_id: string }>, added: unknown[], present: unknown[], removed: { kind: string } | null }
  const again = json<Appended>(await chaperone('bundle', 'append', '--path', pemFile, '--json'))
  t.same([again.added.length, again.present.length], [0, 1], 'appending it again adds nothing')
  const withKey = json<Appended>(await chaperoneWithInput(second.spiffeJson(), 'bundle', 'append', '--format', 'spiffe', '--json'))
  t.same([withKey.added.length, withKey.present.length], [1, 1], '--format spiffe: the JWT key is added, the root was there')
  t.same(withKey.authorities.map(a => [a.kind, a.key_id]), [['x509', ''], ['jwt', second.kid]])
  t.equal(withKey.bundle.sequence, again.bundle.sequence + 1, 'the bundle\'s sequence grows with each change')
  const ca = json<{ bundle_sequence: number }>(await chaperone('ca', 'show', '--json'))
  t.equal(ca.bundle_sequence, withKey.bundle.sequence, 'ca show: the same sequence')

  const removed = await chaperone('bundle', 'remove-authority', '--sha256', second.ca.cert.fingerprint256)
  t.equal(removed.status, 0, removed.stderr)
  t.match(removed.stdout, /^removed X\.509 .*\(sha256 [0-9a-f]{64}\) from the bundle of spiffe:\/\/plant\.example\nBundle sequence {6}: \d+\nAppended authorities : \n {2}served {3}JWT key /)
  const lastRemoved = json<Appended>(await chaperone('bundle', 'remove-authority', '--key-id', second.kid, '--json'))
  t.same([lastRemoved.removed?.kind, lastRemoved.authorities], ['jwt', []])
  t.equal((await chaperone('bundle', 'remove-authority', '--key-id', 'nothing-here')).stderr.includes('no appended JWT authority has the key ID "nothing-here"'), true)

  const garbage = join(dir, 'garbage.pem')
  writeFileSync(garbage, 'not a bundle\n')
  const leafFile = join(dir, 'leaf.pem')
  writeFileSync(leafFile, second.ca.issueSvid('spiffe://plant.example/app').chainPem)
  const ourKid = (JSON.parse((await chaperone('bundle', 'show', '--format', 'spiffe')).stdout) as { keys: Array<{ kid?: string }> }).keys.find(k => k.kid !== undefined)?.kid ?? ''
  const usage: Array<[string[], RegExp]> = [
    [['bundle', 'append', '--path', garbage], /no PEM certificates found/],
    [['bundle', 'remove-authority'], /name the authority to remove: --sha256 HEX or --key-id KID/],
    [['bundle', 'remove-authority', '--sha256', 'ab', '--key-id', 'k'], /name the authority to remove/]
  ]
  for (const [args, reason] of usage) {
    const run = await chaperone(...args)
    t.equal(run.status, 2, `${args.join(' ')}: exit 2`)
    t.match(run.stderr, reason, `${args.join(' ')}: names the problem`)
  }
  const refused: Array<[string[], RegExp]> = [
    [['bundle', 'append', '--path', leafFile], /failed to convert X\.509 authority: not a CA certificate/],
    [['bundle', 'remove-authority', '--key-id', ourKid], /is the CA's own, not an appended one/],
    [['bundle', 'remove-authority', '--sha256', 'xyz'], /is not a SHA-256 fingerprint/]
  ]
  for (const [args, reason] of refused) {
    const run = await chaperone(...args)
    t.equal(run.status, 2, `${args.join(' ')}: refused as bad input (exit 2)`)
    t.match(run.stderr, reason, `${args.join(' ')}: names the problem`)
  }
  t.same(agent?.store.appendedAuthorities().authorities, [], 'nothing appended remains')
})
