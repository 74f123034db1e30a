/**
 * An orchestrator written for SPIRE, pointed at Chaperone unchanged: our Go client of SPIRE's server API
 * (test/interop/spire-api-client, SPIRE's published spire-api-sdk at the version SPIRE_VERSION uses, grpc-go over the
 * Unix socket), written the way spire-controller-manager talks to SPIRE: its unsupported-fields probe; an entry with
 * every field (federating with two trust domains whose bundles it sets through the Bundle API) read back three ways;
 * BatchCreateEntry in batches of 50; ListEntries paged at 200 and filtered by parent, SPIFFE ID and selectors;
 * CountEntries; a duplicate answered ALREADY_EXISTS with the existing entry; validation failures each in its own
 * result; BatchUpdateEntry without an input mask (a full replace, revision bumped); BatchDeleteEntry in batches of 50.
 * It runs first against a real SPIRE server, which proves the client right (each expectation in it is what SPIRE
 * does), then against the Chaperone agent's SPIRE-compatible server socket. Part of `npm run test:interop`.
 */
import t from 'tap'
import type { Test } from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { Agent } from '../../agent/agent'
import { loadAgentConfig } from '../../agent/config'
import { buildGoProgram } from '../../bench/peers/go-tool'
import { run } from '../helpers/command'
import { TRUST_DOMAIN } from './agent-stand'
import { CACHE_DIR, interopSkip, SPIRE_VERSION } from './peers'
import { startSpireStand } from './spire-stand'

const skip = interopSkip()
/** Workload entries the client creates, lists, updates and deletes: three pages of 200 with what is there already. */
const ENTRIES = 450

/** The client's steps, in the order it runs them; each prints one line, the last `done`. */
const STEPS = [
  'flags', 'baseline', 'federated-bundles', 'unsupported-fields-probe', 'probe-create', 'probe-get', 'probe-list',
  'batch-create', 'list-paged', 'list-unpaged', 'count', 'filter-parent-id', 'filter-spiffe-id', 'filter-selectors',
  'duplicate-create', 'mixed-batch', 'update-probe-no-mask', 'batch-update-no-mask', 'batch-delete', 'after-delete',
  'federated-bundles-delete', 'done'
]

interface StepLine { step: string, ok: boolean, detail: string }

/** Runs the client against `socket` and checks every step it printed; the steps seen, in order. */
async function runClient (t: Test, client: string, socket: string, trustDomain: string, parentId: string, extra: string[] = []): Promise<string[]> {
  const startedAt = Date.now()
  const result = await run(client, ['-socket', socket, '-trust-domain', trustDomain, '-parent-id', parentId, '-entries', String(ENTRIES), ...extra], { timeoutMs: 600_000 })
  t.comment(`the client ran ${((Date.now() - startedAt) / 1000).toFixed(1)} s`)
  const steps: string[] = []
  for (const text of result.stdout.split('\n').filter(l => l.trim() !== '')) {
    let line: StepLine
    try {
      line = JSON.parse(text) as StepLine
    } catch {
      t.fail(`the client printed a line that is not a step: ${text}`)
      continue
    }
    steps.push(line.step)
    t.ok(line.ok, `${line.step}: ${line.detail}`)
  }
  t.equal(result.status, 0, `the client exits 0${result.stderr === '' ? '' : `; stderr: ${result.stderr.trim()}`}`)
  t.same(steps, STEPS, 'every step ran, in order')
  return steps
}

void t.test('an orchestrator\'s SPIRE server API client (spire-api-sdk, grpc-go) against SPIRE, then Chaperone', { skip, timeout: 3_600_000 }, async t => {
  const builtAt = Date.now()
  const client = await buildGoProgram(join(__dirname, 'spire-api-client'), join(CACHE_DIR, 'bin'), 'spire-api-client')
  t.comment(`spire-api-client ready in ${((Date.now() - builtAt) / 1000).toFixed(1)} s`)

  await t.test(`against a real SPIRE server ${SPIRE_VERSION}: the client is right`, async t => {
    const startedAt = Date.now()
    const stand = await startSpireStand(t)
    t.comment(`SPIRE ready in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`)
    await runClient(t, client, stand.serverSocket, stand.trustDomain, stand.nodeId)
  })

  await t.test('against the Chaperone agent\'s SPIRE-compatible server socket', async t => {
    const dir = mkdtempSync(join(tmpdir(), 'chaperone-spire-api-'))
    t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
    const serverSocket = join(dir, 'server', 'api.sock')
    const agent = await Agent.start(loadAgentConfig(undefined, { trustDomain: TRUST_DOMAIN, dataDir: join(dir, 'data'), socket: join(dir, 'workload.sock'), adminSocket: join(dir, 'admin.sock'), serverSocket }), pino({ level: 'silent' }))
    t.teardown(async () => { await agent.stop() })
    // Run exactly as against SPIRE: it sets the bundles its entries federate with through the Bundle API, and
    // deletes them at the end. Entries parented on the agent's own ID are the ones it serves, as on a single SPIRE node.
    // One difference on purpose: an entry may federate with a trust domain before its bundle arrives.
    await runClient(t, client, serverSocket, TRUST_DOMAIN, agent.store.agentId, ['-accepts-federation-before-bundle'])
    t.same(agent.store.listFederatedBundles(), [], 'the bundles it set are deleted again')
  })
})
