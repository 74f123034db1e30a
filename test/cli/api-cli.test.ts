import t from 'tap'
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { OPENSSL_MISSING, openssl } from '../helpers/openssl'
import { CLI_SKIP, runCli } from '../helpers/cli'
import type { Run } from '../helpers/cli'
import { startStandIn, TD, WORKLOAD_ID } from '../helpers/workload-stand-in'
import type { StandIn } from '../helpers/workload-stand-in'

// `chaperone api …` and `healthcheck` as a workload runs them: the built bin against a stand-in Workload API.
const skip = CLI_SKIP
const dir = mkdtempSync(join(tmpdir(), 'chaperone-api-cli-'))
let standIn: StandIn | undefined
t.before(async () => { if (skip === false) standIn = await startStandIn(dir, { health: 'SERVING' }) })
t.teardown(async () => {
  await standIn?.close()
  rmSync(dir, { recursive: true, force: true })
})

/** The built CLI with SPIFFE_ENDPOINT_SOCKET pointing at the stand-in. */
async function chaperone (args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return await runCli(args, { SPIFFE_ENDPOINT_SOCKET: standIn?.address, ...env })
}

void t.test('api cli – fetch x509 --write writes SPIRE\'s files, and openssl verifies them', { skip }, async t => {
  const out = join(dir, 'out')
  const run = await chaperone(['api', 'fetch', 'x509', '--write', out])
  t.equal(run.status, 0, run.stderr)
  t.match(run.stdout, `SPIFFE ID       : ${WORKLOAD_ID}\n`)
  t.match(run.stdout, /Hint {12}: internal\nValid from {6}: \d{4}-.*\nValid until {5}: \d{4}-/)
  t.match(run.stdout, `Trust domain    : ${TD}\nFederated with  : td-b.test`)
  t.same(readdirSync(out).sort(), ['bundle.0.pem', 'federated_bundle.0.0.pem', 'svid.0.key', 'svid.0.pem'])
  t.equal(statSync(join(out, 'svid.0.key')).mode & 0o777, 0o600, 'the key is owner-only')
  if (OPENSSL_MISSING === undefined) {
    const verified = openssl(['verify', '-CAfile', join(out, 'bundle.0.pem'), join(out, 'svid.0.pem')])
    t.ok(verified.ok, `openssl verify: ${verified.output}`)
    t.ok(openssl(['pkey', '-in', join(out, 'svid.0.key'), '-noout']).ok, 'openssl reads the key')
  }
  const json = JSON.parse((await chaperone(['api', 'fetch', 'x509', '--json'])).stdout) as { svids: Array<{ spiffe_id: string, trust_domain: string }> }
  t.match(json.svids, [{ spiffe_id: WORKLOAD_ID, trust_domain: TD }])
})

void t.test('api cli – fetch jwt --json gives tokens and bundles; validate-jwt checks them', { skip }, async t => {
  const run = await chaperone(['api', 'fetch', 'jwt', '--audience', 'x', '--audience', 'y', '--json'])
  t.equal(run.status, 0, run.stderr)
  const fetched = JSON.parse(run.stdout) as { svids: Array<{ spiffe_id: string, token: string }>, bundles: Record<string, { keys: unknown[] }> }
  t.match(fetched.svids, [{ spiffe_id: WORKLOAD_ID, token: /^ey/ }])
  t.equal(fetched.bundles[TD].keys.length, 1)
  t.match((await chaperone(['api', 'fetch', 'jwt', '--audience', 'x'])).stdout, `token(${WORKLOAD_ID}):\n\tey`)

  const valid = await chaperone(['api', 'validate-jwt', '--audience', 'y', fetched.svids[0].token])
  t.equal(valid.status, 0, valid.stderr)
  t.match(valid.stdout, `SPIFFE ID : ${WORKLOAD_ID}\nClaims    : {`)
  const wrong = await chaperone(['api', 'validate-jwt', '--audience', 'z', fetched.svids[0].token])
  t.equal(wrong.status, 2, 'a token for another audience is bad input')
  t.match(wrong.stderr, /rejected the request/)
  const noAudience = await chaperone(['api', 'fetch', 'jwt'])
  t.equal(noAudience.status, 2)
  t.match(noAudience.stderr, /--audience/)
})

void t.test('api cli – failures say what to check: exit 1 unreachable or denied, exit 2 for a bad address', { skip }, async t => {
  const missing = join(dir, 'none.sock')
  const unreachable = await chaperone(['api', 'fetch', 'x509', '--socket', `unix://${missing}`])
  t.equal(unreachable.status, 1)
  t.equal(unreachable.stderr, `chaperone: cannot reach the Workload API at unix://${missing}: no socket there; the agent may not be running, or its socket is elsewhere\n`, 'one line, what to check, no gRPC internals')
  const agent = standIn as StandIn
  agent.deny = true
  const denied = await chaperone(['api', 'fetch', 'x509'])
  agent.deny = false
  t.equal(denied.status, 1)
  t.match(denied.stderr, /no identity issued.*registration entry/)
  const badFlag = await chaperone(['api', 'fetch', 'x509', '--socket', 'tcp://localhost:1'])
  t.equal(badFlag.status, 2)
  t.match(badFlag.stderr, /IP address/)
  const badEnv = await chaperone(['api', 'fetch', 'x509'], { SPIFFE_ENDPOINT_SOCKET: 'http://x' })
  t.equal(badEnv.status, 2, 'a bad $SPIFFE_ENDPOINT_SOCKET is bad input too')
  t.match(badEnv.stderr, /unsupported scheme/)
})

void t.test('api cli – healthcheck: 0 when SERVING, 1 with a message when nothing listens', { skip }, async t => {
  const healthy = await chaperone(['healthcheck'])
  t.equal(healthy.status, 0, healthy.stderr)
  t.match(healthy.stdout, /agent is healthy/)
  t.equal((await chaperone(['healthcheck', '--shallow'])).status, 0)
  const missing = `unix://${join(dir, 'none.sock')}`
  for (const extra of [[], ['--shallow']]) {
    const down = await chaperone(['healthcheck', '--socket', missing, ...extra])
    t.equal(down.status, 1, `${extra.join(' ')}: exit 1`)
    t.match(down.stderr, /agent may not be running/)
  }

  const sick = await startStandIn(mkdtempSync(join(dir, 'sick-')), { health: 'NOT_SERVING' })
  t.teardown(() => sick.close())
  const notServing = await chaperone(['healthcheck', '--socket', sick.address])
  t.equal(notServing.status, 1)
  t.match(notServing.stderr, /not serving \(health status NOT_SERVING\)/)
})
