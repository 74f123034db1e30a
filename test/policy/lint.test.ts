import t from 'tap'
import type { Test } from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parsePolicy } from '../../policy/document'
import { lintPolicyFile, lintPolicyText } from '../../policy/lint'
import type { LintResult } from '../../policy/lint'

// `chaperone policy lint`: the loader's errors, then a warning for each rule that is valid but cannot do what
// its author meant. Policies are written inline with one line per argument of yaml(), so line N of the file is
// the N-th argument.

const dir = mkdtempSync(join(tmpdir(), 'chaperone-policy-lint-'))
t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })

const TD = 'spiffe://plant.example'
const yaml = (...lines: string[]): string => `${lines.join('\n')}\n`
const lint = (text: string): LintResult => lintPolicyText(text, 'policy.yaml')

interface Expected {
  readonly at: string | undefined
  readonly path: string
  readonly message: RegExp
  readonly rule?: string
  readonly severity?: 'error' | 'warning'
}

/** Exactly these problems in this order (warnings unless said), with matching counts. */
function expectProblems (t: Test, result: LintResult, expected: readonly Expected[]): void {
  t.same(
    result.problems.map(p => ({ at: p.location ?? null, path: p.path, rule: p.rule ?? null, severity: p.severity })),
    expected.map(e => ({ at: e.at ?? null, path: e.path, rule: e.rule ?? null, severity: e.severity ?? 'warning' })),
    'locations, fields, rules and severities, in order')
  expected.forEach((e, i) => { t.match(result.problems[i]?.message, e.message, `${e.at ?? '(no location)'} ${e.path}: message`) })
  const errors = expected.filter(e => e.severity === 'error').length
  t.equal(result.errors, errors, 'errors counted')
  t.equal(result.warnings, expected.length - errors, 'warnings counted')
}

/** A policy of two rules, "first" then "second", each given as its lines after `name:` (without indentation). */
const twoRules = (first: readonly string[], second: readonly string[], top: readonly string[] = []): string => yaml(
  'version: 1',
  ...top,
  'rules:',
  '  - name: first',
  ...first.map(line => `    ${line}`),
  '  - name: second',
  ...second.map(line => `    ${line}`)
)
/** Line of the "first" and "second" rules' `- name:` in twoRules. */
const firstLine = (top: readonly string[] = []): number => 3 + top.length
const secondLine = (first: readonly string[], top: readonly string[] = []): number => 4 + top.length + first.length

const shadowed = (by: string, line: number): RegExp =>
  new RegExp(`^is shadowed: rule "${by}" \\(line ${line}\\) matches everything this rule matches, so this rule never decides$`)
const neverAllows = (by: string, line: number): RegExp =>
  new RegExp(`^can never allow: rule "${by}" \\(line ${line}\\) denies everything this rule matches, and deny rules win$`)

void t.test('policy lint – a clean policy has no problems and reports its hash', async t => {
  const text = yaml(
    'version: 1',
    'rules:',
    '  - name: fe-api',
    `    from: [${TD}/frontend]`,
    `    to: [${TD}/api]`,
    '    ports: [8443]',
    '    http: {methods: [GET], paths: [/v1/*]}',
    '    action: allow',
    '  - name: scada-plc',
    `    from: [${TD}/scada]`,
    `    to: [${TD}/line-1/**]`,
    '    ports: [502]',
    '    action: allow',
    '  - name: no-guests',
    '    from: [spiffe://guest.example/**]',
    "    to: ['*']",
    '    action: deny'
  )
  const result = lint(text)
  expectProblems(t, result, [])
  t.equal(result.source, 'policy.yaml')
  t.equal(result.hash, parsePolicy(text).hash, 'the same hash as the loader')
  t.match(result.hash, /^sha256:[0-9a-f]{16}$/)
})

void t.test('policy lint – a policy with errors reports only its errors, counted, and no hash', async t => {
  const result = lint(yaml(
    'version: 1',
    'defaultAction: allow',
    'rules:',
    '  - name: a',
    '    from: [spiffe://plant.example]',
    `    to: [${TD}/api/]`,
    '    action: allow',
    '    ports: [0]'
  ))
  // The trust-domain-only pattern and the allow under a default allow would warn; errors come first, alone.
  expectProblems(t, result, [
    { at: 'policy.yaml:6:10', path: '/rules/0/to/0', rule: 'a', severity: 'error', message: /^bad pattern ".*": path cannot have a trailing slash/ },
    { at: 'policy.yaml:8:13', path: '/rules/0/ports/0', rule: 'a', severity: 'error', message: /must be >= 1/ }
  ])
  t.equal(result.hash, undefined)

  const syntax = lint(yaml('version: 1', 'rules:', '  - name: a', '    from: [*]'))
  expectProblems(t, syntax, [{ at: 'policy.yaml:4:12', path: '', severity: 'error', message: /alias/i }])
  t.equal(syntax.hash, undefined)
})

void t.test('policy lint – lints a YAML or JSON file, naming the file in every location; a missing file is one error', async t => {
  const file = join(dir, 'policy.yaml')
  writeFileSync(file, yaml(
    'version: 1',
    'defaultAction: allow',
    'rules:',
    '  - name: fe-api',
    `    from: [${TD}/frontend]`,
    `    to: [${TD}/api]`,
    '    action: allow'
  ))
  const result = lintPolicyFile(file)
  t.equal(result.source, file)
  expectProblems(t, result, [{ at: `${file}:7:13`, path: '/rules/0/action', rule: 'fe-api', message: /^has no effect/ }])
  t.match(result.hash, /^sha256:[0-9a-f]{16}$/, 'warnings do not withhold the hash')

  const jsonFile = join(dir, 'policy.json')
  writeFileSync(jsonFile, JSON.stringify({
    version: 1,
    defaultAction: 'allow',
    rules: [{ name: 'fe-api', from: [`${TD}/frontend`], to: [`${TD}/api`], action: 'allow' }]
  }, null, 2))
  const fromJson = lintPolicyFile(jsonFile)
  expectProblems(t, fromJson, [{ at: `${jsonFile}:13:17`, path: '/rules/0/action', rule: 'fe-api', message: /^has no effect/ }])
  t.equal(fromJson.hash, result.hash, 'the same policy as JSON has the same hash')

  const badJson = join(dir, 'bad.json')
  writeFileSync(badJson, '{\n  "version": 1,\n  "rules": "none"\n}\n')
  expectProblems(t, lintPolicyFile(badJson), [{ at: `${badJson}:3:12`, path: '/rules', severity: 'error', message: /must be array/ }])

  const missing = join(dir, 'missing.yaml')
  const absent = lintPolicyFile(missing)
  expectProblems(t, absent, [{ at: undefined, path: '', severity: 'error', message: /^cannot read the file: ENOENT/ }])
  t.equal(absent.source, missing)
  t.equal(absent.hash, undefined)
})

void t.test('policy lint – warns about a pattern that names only a trust domain: per pattern, or the rule can never match', async t => {
  const result = lint(yaml(
    'version: 1',
    'rules:',
    '  - name: partly',
    '    from:',
    '      - spiffe://plant.example',
    `      - ${TD}/frontend`,
    `    to: [${TD}/api, spiffe://other.example]`,
    '    action: allow',
    '  - name: never',
    "    from: ['*']",
    '    to: [spiffe://plant.example, spiffe://other.example]',
    '    action: deny',
    '  - name: never-from',
    '    from:',
    '      - spiffe://plant.example',
    `    to: [${TD}/api]`,
    '    action: deny',
    '  - name: never-both',
    '    from: [spiffe://plant.example]',
    '    to: [spiffe://plant.example]',
    '    action: deny'
  ))
  expectProblems(t, result, [
    { at: 'policy.yaml:5:9', path: '/rules/0/from/0', rule: 'partly', message: /^never matches: "spiffe:\/\/plant\.example" names a trust domain, not a workload: no peer carries that ID \(spiffe:\/\/<trust domain>\/\*\* is every workload\)$/ },
    { at: 'policy.yaml:7:38', path: '/rules/0/to/1', rule: 'partly', message: /^never matches: "spiffe:\/\/other\.example" names a trust domain, not a workload/ },
    { at: 'policy.yaml:11:9', path: '/rules/1/to', rule: 'never', message: /^can never match: every pattern names a trust domain, not a workload/ },
    { at: 'policy.yaml:15:7', path: '/rules/2/from', rule: 'never-from', message: /^can never match: every pattern names a trust domain/ },
    { at: 'policy.yaml:19:11', path: '/rules/3/from', rule: 'never-both', message: /^can never match/ },
    { at: 'policy.yaml:20:9', path: '/rules/3/to', rule: 'never-both', message: /^can never match/ }
  ])
  t.match(result.hash, /^sha256:/, 'warnings only: the policy is usable')
})

void t.test('policy lint – warns about HTTP conditions on TCP-only ports, well known or listed in tcpPorts', async t => {
  expectProblems(t, lint(yaml(
    'version: 1',
    'tcpPorts: [9000, 502]',
    'rules:',
    '  - name: modbus-read',
    "    from: ['*']",
    `    to: [${TD}/plc]`,
    '    ports: [502]',
    '    http: {methods: [GET]}',
    '    action: allow',
    '  - name: mixed',
    "    from: ['*']",
    `    to: [${TD}/gateway]`,
    '    ports: [8080, 9000, 4840]',
    '    http:',
    '      paths: [/status]',
    '    action: allow',
    '  - name: custom-only',
    "    from: ['*']",
    `    to: [${TD}/historian]`,
    '    ports: [9000]',
    '    http: {methods: [POST]}',
    '    action: allow',
    '  - name: two-tcp',
    "    from: ['*']",
    `    to: [${TD}/db]`,
    '    ports: [5432, 6379]',
    '    http: {methods: [GET]}',
    '    action: deny',
    '  - name: any-port',
    "    from: ['*']",
    `    to: [${TD}/historian]`,
    '    http: {methods: [GET]}',
    '    action: allow',
    '  - name: plain-tcp',
    "    from: ['*']",
    `    to: [${TD}/plc]`,
    '    ports: [502, 9000]',
    '    action: allow'
  )), [
    { at: 'policy.yaml:8:11', path: '/rules/0/http', rule: 'modbus-read', message: /^can never match: HTTP conditions on TCP-only port 502 \(Modbus\/TCP\)$/ },
    { at: 'policy.yaml:15:7', path: '/rules/1/http', rule: 'mixed', message: /^HTTP conditions never match on TCP-only ports 9000 \(listed in tcpPorts\), 4840 \(OPC UA\)$/ },
    { at: 'policy.yaml:21:11', path: '/rules/2/http', rule: 'custom-only', message: /^can never match: HTTP conditions on TCP-only port 9000 \(listed in tcpPorts\)$/ },
    { at: 'policy.yaml:27:11', path: '/rules/3/http', rule: 'two-tcp', message: /^can never match: HTTP conditions on TCP-only ports 5432 \(PostgreSQL\), 6379 \(Redis\)$/ }
  ])
})

void t.test('policy lint – warns that an allow rule has no effect under defaultAction allow', async t => {
  const text = (defaultAction: string): string => yaml(
    'version: 1',
    `defaultAction: ${defaultAction}`,
    'rules:',
    '  - name: fe-api',
    `    from: [${TD}/frontend]`,
    `    to: [${TD}/api]`,
    '    action: allow',
    '  - name: no-guests',
    '    from: [spiffe://guest.example/**]',
    "    to: ['*']",
    '    action: deny',
    '  - name: trial',
    `    from: [${TD}/backend]`,
    `    to: [${TD}/api]`,
    '    action: allow',
    '    mode: dry-run'
  )
  expectProblems(t, lint(text('allow')), [
    { at: 'policy.yaml:7:13', path: '/rules/0/action', rule: 'fe-api', message: /^has no effect: the default action is already allow, and deny rules win over allow rules$/ },
    { at: 'policy.yaml:15:13', path: '/rules/2/action', rule: 'trial', message: /^has no effect/ }
  ])
  expectProblems(t, lint(text('deny')), [])
})

void t.test('policy lint – warns that a later allow is shadowed by an earlier allow that covers it', async t => {
  const cases: Array<[string, string[], string[]]> = [
    ['a * segment covers an exact ID',
      [`from: [${TD}/*]`, `to: [${TD}/api]`, 'action: allow'],
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'action: allow']],
    ['a bare * covers anything',
      ["from: ['*']", `to: [${TD}/api]`, 'action: allow'],
      [`from: [${TD}/frontend, spiffe://other.example/x/**]`, `to: [${TD}/api]`, 'action: allow']],
    ['** covers deeper IDs and a deeper **',
      [`from: [${TD}/line-1/**]`, "to: ['*']", 'action: allow'],
      [`from: [${TD}/line-1/cell-2/plc, ${TD}/line-1/cell-3/**, ${TD}/line-1/*]`, "to: ['*']", 'action: allow']],
    ['spiffe://td/** covers the trust domain\'s workloads',
      [`from: [${TD}/**]`, `to: [${TD}/**]`, 'action: allow'],
      [`from: [${TD}/*/reader]`, `to: [${TD}/ns/*/sa/api]`, 'action: allow']],
    ['each pattern covered by one of several',
      [`from: [${TD}/frontend, ${TD}/backend]`, `to: [${TD}/api]`, 'action: allow'],
      [`from: [${TD}/backend]`, `to: [${TD}/api]`, 'action: allow']],
    ['no ports covers some ports',
      ["from: ['*']", "to: ['*']", 'action: allow'],
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'ports: [8443]', 'action: allow']],
    ['more ports cover fewer',
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'ports: [80, 443, 8443]', 'action: allow'],
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'ports: [8443, 80]', 'action: allow']],
    ['no http covers http',
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'action: allow'],
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'http: {methods: [GET], paths: [/v1/items]}', 'action: allow']],
    ['/v1/* covers /v1/a and /v1/b/*',
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'http: {paths: [/v1/*]}', 'action: allow'],
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'http: {paths: [/v1/a, /v1/b/*]}', 'action: allow']],
    ['http without paths covers http with paths',
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'http: {methods: [GET]}', 'action: allow'],
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'http: {methods: [GET], paths: [/v1/a]}', 'action: allow']],
    ['a superset of methods covers a subset',
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'http: {methods: [GET, HEAD, POST]}', 'action: allow'],
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'http: {methods: [HEAD, GET]}', 'action: allow']],
    ['an identical rule',
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'ports: [8443]', 'http: {methods: [GET], paths: [/v1/*]}', 'action: allow'],
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'ports: [8443]', 'http: {methods: [GET], paths: [/v1/*]}', 'action: allow']],
    ['a deny covers a later deny',
      [`from: [${TD}/vendor/**]`, "to: ['*']", 'action: deny'],
      [`from: [${TD}/vendor/laptop]`, `to: [${TD}/plc]`, 'action: deny']]
  ]
  for (const [label, first, second] of cases) {
    await t.test(label, async t => {
      expectProblems(t, lint(twoRules(first, second)), [
        { at: `policy.yaml:${secondLine(first)}:5`, path: '/rules/1', rule: 'second', message: shadowed('first', firstLine()) }
      ])
    })
  }
})

void t.test('policy lint – does not warn about rules that only partly overlap', async t => {
  const cases: Array<[string, string[], string[]]> = [
    ['* in different positions',
      [`from: [${TD}/*/reader]`, `to: [${TD}/api]`, 'action: allow'],
      [`from: [${TD}/line-1/*]`, `to: [${TD}/api]`, 'action: allow']],
    ['an exact ID before a * covering it',
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'action: allow'],
      [`from: [${TD}/*]`, `to: [${TD}/api]`, 'action: allow']],
    ['** needs at least one more segment',
      [`from: [${TD}/line-1/**]`, "to: ['*']", 'action: allow'],
      [`from: [${TD}/line-1]`, "to: ['*']", 'action: allow']],
    ['a * segment does not cover **',
      [`from: [${TD}/*]`, "to: ['*']", 'action: allow'],
      [`from: [${TD}/**]`, "to: ['*']", 'action: allow']],
    ['another trust domain',
      ['from: [spiffe://plant.example/**]', "to: ['*']", 'action: allow'],
      ['from: [spiffe://other.example/frontend]', "to: ['*']", 'action: allow']],
    ['one pattern of several not covered',
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'action: allow'],
      [`from: [${TD}/frontend, ${TD}/backend]`, `to: [${TD}/api]`, 'action: allow']],
    ['from covered but not to',
      [`from: [${TD}/**]`, `to: [${TD}/api]`, 'action: allow'],
      [`from: [${TD}/frontend]`, `to: [${TD}/db]`, 'action: allow']],
    ['different ports',
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'ports: [80]', 'action: allow'],
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'ports: [443]', 'action: allow']],
    ['fewer ports before more',
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'ports: [80]', 'action: allow'],
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'ports: [80, 443]', 'action: allow']],
    ['ports before no ports',
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'ports: [80]', 'action: allow'],
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'action: allow']],
    ['a rule with http before one without',
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'http: {methods: [GET]}', 'action: allow'],
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'action: allow']],
    ['an exact path before its prefix',
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'http: {paths: [/v1/a]}', 'action: allow'],
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'http: {paths: [/v1/*]}', 'action: allow']],
    ['another path prefix',
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'http: {paths: [/v1/*]}', 'action: allow'],
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'http: {paths: [/v2/x, /v1/a]}', 'action: allow']],
    ['an exact path does not cover its prefix form',
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'http: {paths: [/v1/]}', 'action: allow'],
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'http: {paths: [/v1/*]}', 'action: allow']],
    ['fewer methods before more',
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'http: {methods: [GET]}', 'action: allow'],
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'http: {methods: [GET, POST]}', 'action: allow']],
    ['methods only before paths only',
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'http: {methods: [GET]}', 'action: allow'],
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'http: {paths: [/v1/*]}', 'action: allow']],
    ['paths only before methods only',
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'http: {paths: [/v1/*]}', 'action: allow'],
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'http: {methods: [GET]}', 'action: allow']],
    ['an allow before a deny it covers: the deny still wins',
      ["from: ['*']", "to: ['*']", 'action: allow'],
      [`from: [${TD}/vendor/**]`, "to: ['*']", 'action: deny']],
    ['a deny that only partly covers an allow',
      [`from: [${TD}/vendor/**]`, `to: [${TD}/plc]`, 'action: deny'],
      [`from: [${TD}/*/laptop]`, `to: [${TD}/plc]`, 'action: allow']]
  ]
  for (const [label, first, second] of cases) {
    await t.test(label, async t => {
      const result = lint(twoRules(first, second))
      expectProblems(t, result, [])
      t.match(result.hash, /^sha256:/)
    })
  }
})

void t.test('policy lint – warns that a deny covering an allow means the allow can never allow, wherever the deny is', async t => {
  const allow = [`from: [${TD}/vendor/laptop]`, `to: [${TD}/plc]`, 'ports: [502]', 'action: allow']
  const deny = [`from: [${TD}/vendor/**]`, "to: ['*']", 'action: deny']
  // The deny comes later in the file.
  expectProblems(t, lint(twoRules(allow, deny)), [
    { at: `policy.yaml:${firstLine()}:5`, path: '/rules/0', rule: 'first', message: neverAllows('second', secondLine(allow)) }
  ])
  // The deny comes first.
  expectProblems(t, lint(twoRules(deny, allow)), [
    { at: `policy.yaml:${secondLine(deny)}:5`, path: '/rules/1', rule: 'second', message: neverAllows('first', firstLine()) }
  ])
})

void t.test('policy lint – a dry-run rule does not shadow an enforced rule', async t => {
  const cases: Array<[string, string[], string[]]> = [
    ['a dry-run deny before an enforced allow',
      ["from: ['*']", "to: ['*']", 'action: deny', 'mode: dry-run'],
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'action: allow']],
    ['a dry-run allow before an enforced allow',
      ["from: ['*']", "to: ['*']", 'action: allow', 'mode: dry-run'],
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'action: allow']],
    ['a dry-run deny before an enforced deny',
      ["from: ['*']", "to: ['*']", 'action: deny', 'mode: dry-run'],
      [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'action: deny']]
  ]
  for (const [label, first, second] of cases) {
    await t.test(label, async t => { expectProblems(t, lint(twoRules(first, second)), []) })
  }
})

void t.test('policy lint – an enforced rule shadows a dry-run rule it covers', async t => {
  const enforcedAllow = ["from: ['*']", `to: [${TD}/api]`, 'action: allow']
  const dryRunAllow = [`from: [${TD}/frontend]`, `to: [${TD}/api]`, 'action: allow', 'mode: dry-run']
  // The enforced allow comes first in the file.
  expectProblems(t, lint(twoRules(enforcedAllow, dryRunAllow)), [
    { at: `policy.yaml:${secondLine(enforcedAllow)}:5`, path: '/rules/1', rule: 'second', message: shadowed('first', firstLine()) }
  ])
  // Enforced rules decide before dry-run rules of the same action wherever they are in the file.
  expectProblems(t, lint(twoRules(dryRunAllow, enforcedAllow)), [
    { at: `policy.yaml:${firstLine()}:5`, path: '/rules/0', rule: 'first', message: shadowed('second', secondLine(dryRunAllow)) }
  ])
  // A dry-run deny after an enforced deny that covers it is never reported.
  const enforcedDeny = ["from: ['*']", "to: ['*']", 'action: deny']
  const dryRunDeny = [`from: [${TD}/vendor/**]`, "to: ['*']", 'action: deny', 'mode: dry-run']
  expectProblems(t, lint(twoRules(enforcedDeny, dryRunDeny)), [
    { at: `policy.yaml:${secondLine(enforcedDeny)}:5`, path: '/rules/1', rule: 'second', message: shadowed('first', firstLine()) }
  ])
  // An earlier dry-run rule of the same action and mode is reported first.
  const dryRunAny = ["from: ['*']", `to: [${TD}/api]`, 'action: allow', 'mode: dry-run']
  expectProblems(t, lint(twoRules(dryRunAny, dryRunAllow)), [
    { at: `policy.yaml:${secondLine(dryRunAny)}:5`, path: '/rules/1', rule: 'second', message: shadowed('first', firstLine()) }
  ])
  // An enforced deny covering a dry-run allow: the allow could never be reported.
  expectProblems(t, lint(twoRules(dryRunAllow, enforcedDeny)), [
    { at: `policy.yaml:${firstLine()}:5`, path: '/rules/0', rule: 'first', message: neverAllows('second', secondLine(dryRunAllow)) }
  ])
})

void t.test('policy lint – rules that can never match are reported as such, not as shadowing each other', async t => {
  // Both rules' HTTP conditions are all on a TCP-only port: each is reported as dead, the second not as shadowed.
  const dead = ["from: ['*']", "to: ['*']", 'ports: [502]', 'http: {methods: [GET]}', 'action: allow']
  const live = [`from: [${TD}/scada]`, `to: [${TD}/plc]`, 'ports: [502]', 'http: {methods: [GET]}', 'action: allow']
  expectProblems(t, lint(twoRules(dead, live)), [
    { at: 'policy.yaml:7:11', path: '/rules/0/http', rule: 'first', message: /^can never match: HTTP conditions on TCP-only port 502/ },
    { at: 'policy.yaml:13:11', path: '/rules/1/http', rule: 'second', message: /^can never match: HTTP conditions on TCP-only port 502/ }
  ])
})

void t.test('policy lint – several warnings of different kinds come sorted by line, and counted', async t => {
  const result = lint(yaml(
    'version: 1',
    'defaultAction: allow',
    'rules:',
    '  - name: readers',
    `    from: [${TD}/*]`,
    `    to: [${TD}/api, spiffe://plant.example]`,
    '    action: allow',
    '  - name: fe-api',
    `    from: [${TD}/frontend]`,
    `    to: [${TD}/api]`,
    '    action: allow',
    '  - name: modbus',
    "    from: ['*']",
    `    to: [${TD}/plc]`,
    '    ports: [502, 8080]',
    '    http: {methods: [GET]}',
    '    action: deny'
  ))
  expectProblems(t, result, [
    { at: 'policy.yaml:6:38', path: '/rules/0/to/1', rule: 'readers', message: /^never matches: "spiffe:\/\/plant\.example"/ },
    { at: 'policy.yaml:7:13', path: '/rules/0/action', rule: 'readers', message: /^has no effect/ },
    { at: 'policy.yaml:8:5', path: '/rules/1', rule: 'fe-api', message: shadowed('readers', 4) },
    { at: 'policy.yaml:11:13', path: '/rules/1/action', rule: 'fe-api', message: /^has no effect/ },
    { at: 'policy.yaml:16:11', path: '/rules/2/http', rule: 'modbus', message: /^HTTP conditions never match on TCP-only port 502 \(Modbus\/TCP\)$/ }
  ])
  t.match(result.hash, /^sha256:/)
})

void t.test('policy lint – an allow covered by both an earlier allow and a deny is reported as never allowing', async t => {
  // Rule 2 is covered by rule 1 (an earlier allow) and by rule 3 (a deny). Deny rules win, so what matters to the
  // author is that rule 2 can never allow; the engine would never even reach rule 1 for these connections.
  const result = lint(yaml(
    'version: 1',
    'rules:',
    '  - name: readers',
    `    from: [${TD}/*]`,
    `    to: [${TD}/api]`,
    '    action: allow',
    '  - name: fe-api',
    `    from: [${TD}/frontend]`,
    `    to: [${TD}/api]`,
    '    action: allow',
    '  - name: no-frontend',
    `    from: [${TD}/frontend]`,
    "    to: ['*']",
    '    action: deny'
  ))
  t.same(result.problems.map(p => [p.location, p.rule]), [['policy.yaml:7:5', 'fe-api']], 'one warning, on fe-api')
  t.match(result.problems[0]?.message, neverAllows('no-frontend', 11), 'names the deny that decides')
})
