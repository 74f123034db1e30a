/**
 * Federation relationships end to end in one process: two real agents, plant-b serving its bundle endpoint
 * (https_spiffe), plant-a federating with it — from its config file with a bootstrap bundle, and at run time through
 * `chaperone federation` (the built CLI, as an operator runs it). Proves: the bundle is fetched and kept current
 * without any manual step (a change on plant-b arrives at the next poll, authenticated by the bundle held); a wrong
 * endpoint SPIFFE ID is refused, logged with its reason and shown by `federation show`; with plant-b down the last good
 * bundle is kept and survives a restart; deleting a relationship deletes its bundle; `bundle show --federated`.
 */
import t from 'tap'
import type { Test } from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import pino from 'pino'
import { Agent } from '../../../agent/agent'
import { loadAgentConfig } from '../../../agent/config'
import { freePort } from '../../../bench/proxy/processes'
import { createTestCa } from '../../../certs-test'
import { CLI_SKIP, runCli } from '../../helpers/cli'
import { waitFor } from '../../helpers/command'

interface Running { agent: Agent, logs: () => Array<Record<string, unknown>>, admin: string, stop: () => Promise<void> }

async function startAgent (t: Test, dir: string, lines: string[]): Promise<Running> {
  writeFileSync(join(dir, 'agent.yaml'), [...lines,
    `dataDir: ${join(dir, 'data')}`, `socket: ${join(dir, 'w.sock')}`, `adminSocket: ${join(dir, 'a.sock')}`, `serverSocket: ${join(dir, 's', 'api.sock')}`, ''].join('\n'))
  const logged: string[] = []
  const sink = new Writable({ write (chunk: Buffer, _encoding, done) { logged.push(...chunk.toString().split('\n').filter(l => l !== '')); done() } })
  const agent = await Agent.start(loadAgentConfig(join(dir, 'agent.yaml')), pino({ level: 'debug' }, sink))
  let stopped = false
  const stop = async (): Promise<void> => { if (!stopped) { stopped = true; await agent.stop() } }
  t.teardown(stop)
  return { agent, logs: () => logged.map(line => JSON.parse(line) as Record<string, unknown>), admin: join(dir, 'a.sock'), stop }
}

function tmp (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-federation-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

async function cli (admin: string, args: string[]): Promise<{ status: number | null, stdout: string, stderr: string }> {
  return await runCli([...args, '--admin-socket', admin])
}

void t.test('federation – fetched, kept current, refused with a reason, kept through an outage and a restart', { skip: CLI_SKIP }, async t => {
  const [bDir, aDir] = [tmp(t), tmp(t)]
  const port = await freePort()
  const b = await startAgent(t, bDir, ['trustDomain: plant-b.example', 'federation:', '  refreshHint: 4s', '  bundleEndpoint:', `    address: 127.0.0.1:${port}`, '    profile: https_spiffe'])
  const url = `https://127.0.0.1:${port}`
  // A bootstrap bundle without sequence and refresh hint (PEM): the endpoint's hint must still set the schedule.
  writeFileSync(join(aDir, 'plant-b.pem'), b.agent.store.ownBundle(b.agent.ca.bundle()).x509.toPem())
  const aConfig = ['trustDomain: plant-a.example', 'federation:', '  minimumRefresh: 1s', '  relationships:',
    '    - trustDomain: plant-b.example', `      bundleEndpointUrl: ${url}`, '      profile: https_spiffe',
    '      endpointSpiffeId: spiffe://plant-b.example/spire/server', `      bundleFile: ${join(aDir, 'plant-b.pem')}`, '      bundleFormat: pem']
  let a = await startAgent(t, aDir, aConfig)
  const held = (): number | undefined => a.agent.store.findFederatedBundle('plant-b.example')?.bundle.sequence
  const bSequence = (): number => b.agent.store.ownBundle(b.agent.ca.bundle()).sequence ?? 0

  await waitFor('plant-a to fetch plant-b\'s bundle', 10_000, async () => a.agent.federation.statusOf('plant-b.example').fetch.lastSuccessAt !== undefined ? true : undefined)
  t.equal(held(), bSequence(), 'plant-a holds plant-b\'s bundle, at its sequence')
  t.equal(a.agent.store.findFederatedBundle('plant-b.example')?.bundle.refreshHintSeconds, 4, 'with the endpoint\'s refresh hint, which schedules the next fetch')

  // A change on plant-b (an authority appended: the sequence goes up) reaches plant-a by itself.
  b.agent.store.appendAuthorities({ x509: [createTestCa('plant-b.example').certDer] }, b.agent.ca.bundle())
  const changed = bSequence()
  await waitFor('plant-a to fetch plant-b\'s changed bundle', 15_000, async () => held() === changed ? true : undefined)
  t.equal(a.agent.store.findFederatedBundle('plant-b.example')?.bundle.x509.size, b.agent.store.ownBundle(b.agent.ca.bundle()).x509.size, 'with the new authority')
  t.ok(a.logs().some(l => l.msg === 'federation: bundle updated from the endpoint' && l.trustDomain === 'plant-b.example' && l.sequence === changed), 'the update is logged')

  // Run time: a relationship whose endpoint presents another SPIFFE ID than the one named is refused.
  const created = await cli(a.admin, ['federation', 'create', '--trust-domain', 'plant-c.example', '--bundle-endpoint-url', url, '--profile', 'https_spiffe',
    '--endpoint-spiffe-id', 'spiffe://plant-b.example/bundle-server'])
  t.equal(created.status, 0, created.stderr)
  await waitFor('the wrong ID to be refused', 10_000, async () => a.agent.federation.statusOf('plant-c.example').fetch.lastError !== undefined ? true : undefined)
  const shown = await cli(a.admin, ['federation', 'show', '--trust-domain', 'plant-c.example'])
  t.match(shown.stdout, /Last fetch {6}: \S+ failed \(endpoint_id\)/, 'federation show says why')
  t.match(shown.stdout, /Bundle {10}: none yet/)
  t.ok(a.logs().some(l => l.msg === 'federation: bundle fetch failed; no bundle held yet, retrying' && l.reason === 'endpoint_id' && l.trustDomain === 'plant-c.example'), 'and it is logged with the reason')
  const refreshed = await cli(a.admin, ['federation', 'refresh', '--trust-domain', 'plant-c.example'])
  t.equal(refreshed.status, 1, 'refresh fails')
  t.match(refreshed.stderr, /spiffe:\/\/plant-b\.example\/spire\/server/, 'naming the ID presented')
  t.equal((await cli(a.admin, ['federation', 'create', '--trust-domain', 'plant-b.example', '--bundle-endpoint-url', url, '--profile', 'https_web'])).status, 2, 'an existing one is not created again')
  t.equal((await cli(a.admin, ['federation', 'delete', '--trust-domain', 'plant-b.example'])).status, 2, 'a config one is not deleted at run time')
  const deleted = await cli(a.admin, ['federation', 'delete', '--trust-domain', 'plant-c.example'])
  t.equal(deleted.status, 0, deleted.stderr)

  const listed = JSON.parse((await cli(a.admin, ['federation', 'list', '--json'])).stdout) as Array<{ trust_domain: string, source: string, bundle_sequence: number }>
  t.same(listed.map(r => [r.trust_domain, r.source, r.bundle_sequence]), [['plant-b.example', 'config', changed]], 'federation list')
  const bundles = await cli(a.admin, ['bundle', 'show', '--federated'])
  t.match(bundles.stdout, /Trust domain {6}: spiffe:\/\/plant-b\.example[\s\S]*Bundle endpoint : https:\/\/127\.0\.0\.1[\s\S]*Next refresh/, 'bundle show --federated')

  // plant-b down: plant-a keeps the last good bundle, counts the failures, and still holds it after a restart.
  await b.stop()
  await waitFor('a failed fetch', 15_000, async () => a.agent.federation.statusOf('plant-b.example').fetch.consecutiveFailures > 0 ? true : undefined)
  t.equal(held(), changed, 'the last good bundle is kept')
  await a.stop()
  a = await startAgent(t, aDir, aConfig)
  t.equal(held(), changed, 'and survives a restart (the bootstrap file does not replace it)')
})

void t.test('federation – removing a relationship removes the bundle, and workloads lose it', { skip: CLI_SKIP }, async t => {
  const dir = tmp(t)
  const a = await startAgent(t, dir, ['trustDomain: plant-a.example'])
  writeFileSync(join(dir, 'c.pem'), createTestCa('plant-c.example').certPem)
  const created = await cli(a.admin, ['federation', 'create', '--trust-domain', 'plant-c.example', '--bundle-endpoint-url', 'https://127.0.0.1:9/', '--profile', 'https_web',
    '--bundle-path', join(dir, 'c.pem'), '--bundle-format', 'pem'])
  t.equal(created.status, 0, created.stderr)
  t.ok(a.agent.store.findFederatedBundle('plant-c.example'), 'the bootstrap bundle is held')
  const entry = await cli(a.admin, ['entry', 'create', '--spiffe-id', 'spiffe://plant-a.example/app', '--selector', 'unix:uid:0', '--federates-with', 'spiffe://plant-d.example'])
  t.equal(entry.status, 0, `an entry may federate with a trust domain whose bundle has not come yet: ${entry.stderr}`)
  t.equal((await cli(a.admin, ['federation', 'delete', '--trust-domain', 'plant-c.example'])).status, 0)
  t.equal(a.agent.store.findFederatedBundle('plant-c.example'), undefined, 'the bundle is gone with it')
  t.same(a.agent.federation.status(), [])
})
