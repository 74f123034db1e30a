import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLI_SKIP as skip, runCli as chaperone } from '../helpers/cli'

// `chaperone policy lint FILE --sidecar CONFIG [--spiffe-id ID]`, the built bin on real files: the policy's own
// problems plus a warning for each rule whose ports that sidecar's listeners never serve.

const dir = mkdtempSync(join(tmpdir(), 'chaperone-lint-sidecar-'))
t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })

const TD = 'spiffe://plant.example'
const file = (name: string, text: string): string => {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}
const policy = file('policy.yaml', `version: 1
rules:
  - name: frontend-calls-api
    from: [${TD}/frontend]
    to: [${TD}/api]
    ports: [8080]
    action: allow
`)
/** A sidecar configuration with one outbound listener to the api's sidecar (its TLS port 8443); `more` is added to the listener. */
const sidecar = (name: string, top: string, more = ''): string =>
  file(name, `${top}outbound:\n  - { name: api, listen: "127.0.0.1:9001", target: "10.0.0.2:8443"${more} }\n`)
const frontend = sidecar('frontend.yaml', `spiffeId: ${TD}/frontend\n`)
const warning = `${policy}:6:12: warning: rule "frontend-calls-api": ports: never matches on the sidecar of ${TD}/frontend: the rule lists port 8080; ` +
  'its outbound listeners serve port 8443 (an outbound listener serves its servicePort, by default its target\'s port)\n'

void t.test('policy cli – lint --sidecar: a rule whose ports the listeners never serve warns; exit 1 only with --strict', { skip }, async t => {
  const warned = await chaperone(['policy', 'lint', policy, '--sidecar', frontend])
  t.equal(warned.status, 0, warned.stderr)
  t.equal(warned.stdout, `${warning}${policy}: 0 errors, 1 warning\n`)
  t.equal((await chaperone(['policy', 'lint', policy, '--sidecar', frontend, '--strict'])).status, 1)
  const json = await chaperone(['policy', 'lint', policy, '--sidecar', frontend, '--json'])
  t.match(JSON.parse(json.stdout), { errors: 0, warnings: 1, problems: [{ severity: 'warning', rule: 'frontend-calls-api', path: '/rules/0/ports', location: `${policy}:6:12` }] })
})

void t.test('policy cli – lint --sidecar: clean once servicePort names the app\'s port', { skip }, async t => {
  const fixed = await chaperone(['policy', 'lint', policy, '--strict', '--sidecar', sidecar('fixed.yaml', `spiffeId: ${TD}/frontend\n`, ', servicePort: 8080')])
  t.equal(fixed.status, 0, fixed.stderr)
  t.match(fixed.stdout, new RegExp(`^${policy}: no problems \\(sha256:[0-9a-f]{16}\\)\\n$`))
})

void t.test('policy cli – lint --sidecar: --spiffe-id names the sidecar, over the configuration\'s spiffeId', { skip }, async t => {
  const named = await chaperone(['policy', 'lint', policy, '--sidecar', sidecar('anonymous.yaml', ''), '--spiffe-id', `${TD}/frontend`])
  t.equal(named.stdout, `${warning}${policy}: 0 errors, 1 warning\n`)
  t.match((await chaperone(['policy', 'lint', policy, '--sidecar', frontend, '--spiffe-id', `${TD}/db`])).stdout, `${policy}: no problems`)
})

void t.test('policy cli – lint --sidecar: bad input exits 2 with the reason', { skip }, async t => {
  const cases: Array<[string[], RegExp]> = [
    [['policy', 'lint', policy, '--sidecar', sidecar('no-id.yaml', '')], /--sidecar needs the sidecar's SPIFFE ID: give --spiffe-id, or set spiffeId in .*no-id\.yaml/],
    [['policy', 'lint', policy, '--spiffe-id', `${TD}/frontend`], /--spiffe-id goes with --sidecar/],
    [['policy', 'lint', policy, '--sidecar', sidecar('bad-port.yaml', `spiffeId: ${TD}/frontend\n`, ', servicePort: 0')], /bad-port\.yaml:3:82: outbound\[0\]\.servicePort: must be >= 1/]
  ]
  for (const [args, message] of cases) {
    const run = await chaperone(args)
    t.equal(run.status, 2, args.join(' '))
    t.match(run.stderr, message)
  }
})
