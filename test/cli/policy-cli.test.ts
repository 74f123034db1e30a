import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { Agent } from '../../agent/agent'
import { AdminClient } from '../../agent/admin/client'
import { loadAgentConfig } from '../../agent/config'
import { CLI_SKIP as skip, runCli as chaperone } from '../helpers/cli'

// `chaperone policy lint|check|matrix` as an operator runs them: the built bin on real files; the matrix of
// registered IDs asks a real agent (in this process) over its admin socket.

const dir = mkdtempSync(join(tmpdir(), 'chaperone-policy-cli-'))
t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })

const TD = 'spiffe://plant.example'
const POLICY = `version: 1
defaultAction: deny
rules:
  - name: frontend-reads-api
    from: [${TD}/frontend]
    to:   [${TD}/api]
    ports: [8080]
    http: { methods: [GET], paths: [/v1/*] }
    action: allow
  - name: api-to-db
    from: [${TD}/api]
    to: [${TD}/db]
    action: allow
  - name: try-block-vendors
    from: [${TD}/vendor/**]
    to: ["*"]
    action: deny
    mode: dry-run
`
const file = (name: string, text: string): string => {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}
const policy = file('policy.yaml', POLICY)

void t.test('policy cli – lint: clean exits 0; warnings exit 0, or 1 with --strict; errors exit 2 with file:line:column', { skip }, async t => {
  const clean = await chaperone(['policy', 'lint', policy])
  t.equal(clean.status, 0, clean.stderr)
  t.match(clean.stdout, new RegExp(`^${policy}: no problems \\(sha256:[0-9a-f]{16}\\)\\n$`))

  const warned = file('warned.yaml', `${POLICY}  - name: api-to-db-again
    from: [${TD}/api]
    to: [${TD}/db]
    ports: [5432]
    action: allow
`)
  const expected = `${warned}:19:5: warning: rule "api-to-db-again": is shadowed: rule "api-to-db" (line 10) matches everything this rule matches, so this rule never decides\n`
  const loose = await chaperone(['policy', 'lint', warned])
  t.equal(loose.status, 0)
  t.equal(loose.stdout, `${expected}${warned}: 0 errors, 1 warning\n`)
  t.equal((await chaperone(['policy', 'lint', '--strict', warned])).status, 1)

  const broken = file('broken.yaml', POLICY.replace('to:   [', 'colour: red\n    to:   [').replace('/vendor/**', '/**/vendor'))
  const errors = await chaperone(['policy', 'lint', '--strict', broken])
  t.equal(errors.status, 2)
  t.equal(errors.stdout, [
    `${broken}:6:5: error: rule "frontend-reads-api": colour: unknown field`,
    `${broken}:16:12: error: rule "try-block-vendors": from[0]: bad pattern "${TD}/**/vendor": ** must be the last segment`,
    `${broken}: 2 errors, 0 warnings`, ''
  ].join('\n'))
  const json = await chaperone(['policy', 'lint', '--json', broken])
  t.equal(json.status, 2)
  t.match(JSON.parse(json.stdout), { errors: 2, warnings: 0, problems: [{ severity: 'error', rule: 'frontend-reads-api', location: `${broken}:6:5` }, {}] })
  const missing = await chaperone(['policy', 'lint', join(dir, 'nope.yaml')])
  t.equal(missing.status, 2)
  t.match(missing.stdout, /nope\.yaml: error: cannot read the file: ENOENT/)
})

void t.test('policy cli – check: ALLOW exits 0 and names the rule with its line', { skip }, async t => {
  const run = await chaperone(['policy', 'check', policy, '--from', `${TD}/frontend`, '--to', `${TD}/api`, '--port', '8080', '--method', 'get', '--path', '/v1/../v1/items?page=2'])
  t.equal(run.status, 0, run.stderr)
  t.equal(run.stdout, [
    `ALLOW  ${TD}/frontend → ${TD}/api  (port 8080, GET /v1/items)`,
    `  rule:    frontend-reads-api  (${policy}:4:5)`,
    '  reason:  rule "frontend-reads-api" allows it',
    `  policy:  ${policy} (${/sha256:[0-9a-f]{16}/.exec(run.stdout)?.[0] ?? ''})`, ''
  ].join('\n'))
})

void t.test('policy cli – check: a default DENY exits 1 and shows the nearest rule and what did not match', { skip }, async t => {
  const run = await chaperone(['policy', 'check', policy, '--from', `${TD}/frontend`, '--to', `${TD}/api`, '--port', '8080'])
  t.equal(run.status, 1)
  t.match(run.stdout, `DENY   ${TD}/frontend → ${TD}/api  (port 8080, plain TCP)\n  rule:    default\n  reason:  no rule matched; the default action is deny\n`)
  t.match(run.stdout, `  nearest: rule "frontend-reads-api" (allow)  (${policy}:4:5), which did not match:\n           - http: the rule has HTTP conditions, which never match a plain TCP connection\n`)
  const json = await chaperone(['policy', 'check', policy, '--json', '--from', `${TD}/vendor/x`, '--to', `${TD}/db`, '--port', '5432'])
  t.equal(json.status, 1)
  t.match(JSON.parse(json.stdout), {
    decision: 'DENY', allow: false, rule: 'default', dryRun: true,
    wouldBe: { allow: false, rule: 'try-block-vendors' },
    request: { from: `${TD}/vendor/x`, to: `${TD}/db`, port: 5432 },
    nearest: { rule: 'api-to-db', location: `${policy}:10:5`, mismatches: [`from: ${TD}/vendor/x matches none of ${TD}/api`] }
  })
  const dryRun = await chaperone(['policy', 'check', policy, '--from', `${TD}/vendor/x`, '--to', `${TD}/db`])
  t.match(dryRun.stdout, `  dry-run: rule "try-block-vendors" would DENY it (mode: dry-run, not enforced)  (${policy}:14:5)\n`)
})

void t.test('policy cli – check: bad input exits 2 with the reason', { skip }, async t => {
  const base = ['policy', 'check', policy, '--from', `${TD}/a`, '--to', `${TD}/b`]
  const cases: Array<[string[], RegExp]> = [
    [['policy', 'check', policy, '--from', 'frontend', '--to', `${TD}/b`], /invalid SPIFFE ID "frontend": scheme is missing/],
    [[...base, '--port', '0'], /a port is a whole number from 1 to 65535/],
    [[...base, '--method', 'GET'], /--method and --path go together/],
    [[...base, '--method', 'GET', '--path', '/a%2Fb'], /encoded slashes and backslashes are refused/],
    [['policy', 'check', file('invalid.yaml', 'version: 1\nrules: {}\n'), '--from', `${TD}/a`, '--to', `${TD}/b`], /invalid\.yaml:2:8: error: rules: must be array/],
    [['policy', 'check', policy, '--to', `${TD}/b`], /required option '--from <id>' not specified/]
  ]
  for (const [args, message] of cases) {
    const run = await chaperone(args)
    t.equal(run.status, 2, args.join(' '))
    t.match(run.stderr, message)
  }
})

void t.test('policy cli – matrix of given IDs: who can talk to whom, with conditional and dry-run pairs explained', { skip }, async t => {
  const ids = [`${TD}/frontend`, `${TD}/api`, `${TD}/db`, `${TD}/vendor/x`]
  const run = await chaperone(['policy', 'matrix', policy, '--ids', ids.join(',')])
  t.equal(run.status, 0, run.stderr)
  t.match(run.stdout, [
    'from \\ to                            [1]    [2]    [3]    [4]',
    `[1] ${TD}/frontend  deny   some   deny   deny`,
    `[2] ${TD}/api       deny   deny   allow  deny`,
    `[3] ${TD}/db        deny   deny   deny   deny`,
    `[4] ${TD}/vendor/x  deny~  deny~  deny~  deny~`,
    '',
    '[1] → [2]: some: depends on port or HTTP request, see rule frontend-reads-api (decided by default otherwise)',
    '[4] → [1]: ~: dry-run rule "try-block-vendors" would DENY (not enforced)'
  ].join('\n'))
  const json = await chaperone(['policy', 'matrix', policy, '--json', '--port', '9090', '--ids', ids.slice(0, 2).join(',')])
  t.match(JSON.parse(json.stdout), { port: 9090, cells: [[{ verdict: 'deny' }, { verdict: 'deny', conditionalRules: [] }], [{}, {}]] }, 'at another port the HTTP rule does not apply')
  t.equal((await chaperone(['policy', 'matrix', policy, '--ids', 'spiffe://Bad/x'])).status, 2)
})

void t.test('policy cli – matrix without --ids uses the IDs registered with the agent', { skip }, async t => {
  const adminSocket = join(dir, 'admin.sock')
  const agent = await Agent.start(loadAgentConfig(undefined, { trustDomain: 'plant.example', dataDir: join(dir, 'data'), socket: join(dir, 'workload.sock'), adminSocket, serverSocket: join(dir, 'server.sock') }), pino({ level: 'silent' }))
  const admin = new AdminClient(adminSocket)
  t.teardown(async () => {
    admin.close()
    await agent.stop()
  })
  const empty = await chaperone(['policy', 'matrix', policy, '--admin-socket', adminSocket])
  t.equal(empty.status, 2)
  t.match(empty.stderr, /no IDs: give --ids, or register entries with the agent first/)
  for (const [name, uid] of [['api', 1001], ['db', 1002], ['api', 1003]] as const) {
    await admin.createEntry({ spiffe_id: `${TD}/${name}`, parent_id: '', selectors: [`unix:uid:${uid}`] })
  }
  const run = await chaperone(['policy', 'matrix', policy, '--json', '--admin-socket', adminSocket])
  t.equal(run.status, 0, run.stderr)
  t.match(JSON.parse(run.stdout), { ids: [`${TD}/api`, `${TD}/db`], cells: [[{ verdict: 'deny' }, { verdict: 'allow', rule: 'api-to-db' }], [{}, {}]] })
})
