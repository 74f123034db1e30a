import t from 'tap'
import type { Test } from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parsePolicy } from '../../policy/document'
import { lintPolicyFile, lintPolicyText } from '../../policy/lint'
import type { LintResult } from '../../policy/lint'
import { ANY, TD, block, expectProblems as expectProblemList, policy, policyWith, rule } from '../helpers/policy-text'
import type { ExpectedProblem, RuleFields } from '../helpers/policy-text'

// `chaperone policy lint`: the loader's errors, then a warning for each rule that is valid but cannot do what
// its author meant. Policies are written inline with policy() and rule(): `version: 1`, the top-level keys,
// `rules:`, then each rule's keys one a line in the order given (see test/helpers/policy-text.ts).

const dir = mkdtempSync(join(tmpdir(), 'chaperone-policy-lint-'))
t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })

const lint = (text: string): LintResult => lintPolicyText(text, 'policy.yaml')

/** Exactly these problems in this order (warnings unless said), with matching counts. */
function expectProblems (t: Test, result: LintResult, expected: readonly ExpectedProblem[]): void {
  expectProblemList(t, result.problems, expected, 'warning')
  const errors = expected.filter(e => e.severity === 'error').length
  t.equal(result.errors, errors, 'errors counted')
  t.equal(result.warnings, expected.length - errors, 'warnings counted')
}

/** A policy of two rules, "first" then "second", each given as its fields after `name:`. */
const twoRules = (first: RuleFields, second: RuleFields): string => policy({ name: 'first', ...first }, { name: 'second', ...second })
/** Line of the "first" and "second" rules' `- name:` in twoRules. */
const firstLine = 3
const secondLine = (first: RuleFields): number => firstLine + 1 + rule(first).length

/** The rule's fields with `action:` allow or deny after them, and `mode: dry-run` after that. */
const allow = (fields: RuleFields): RuleFields => ({ ...fields, action: 'allow' })
const deny = (fields: RuleFields): RuleFields => ({ ...fields, action: 'deny' })
const dryRun = (fields: RuleFields): RuleFields => ({ ...fields, mode: 'dry-run' })
/** From and to of the commonest rule, frontend to api. */
const feToApi: RuleFields = { from: [`${TD}/frontend`], to: [`${TD}/api`] }
/** An allow from frontend to api, `more` added after its `to:` (or put in the place of its from or to). */
const feAllow = (more: RuleFields = {}): RuleFields => allow({ ...feToApi, ...more })
const feApi: RuleFields = { name: 'fe-api', ...feAllow() }
const noGuests = deny({ name: 'no-guests', from: ['spiffe://guest.example/**'], to: [ANY] })

const shadowed = (by: string, line: number): RegExp =>
  new RegExp(`^is shadowed: rule "${by}" \\(line ${line}\\) matches everything this rule matches, so this rule never decides$`)
const neverAllows = (by: string, line: number): RegExp =>
  new RegExp(`^can never allow: rule "${by}" \\(line ${line}\\) denies everything this rule matches, and deny rules win$`)

void t.test('policy lint – a clean policy has no problems and reports its hash', async t => {
  const text = policy(
    { name: 'fe-api', ...feAllow({ ports: [8443], http: { methods: ['GET'], paths: ['/v1/*'] } }) },
    allow({ name: 'scada-plc', from: [`${TD}/scada`], to: [`${TD}/line-1/**`], ports: [502] }),
    noGuests
  )
  const result = lint(text)
  expectProblems(t, result, [])
  t.equal(result.source, 'policy.yaml')
  t.equal(result.hash, parsePolicy(text).hash, 'the same hash as the loader')
  t.match(result.hash, /^sha256:[0-9a-f]{16}$/)
})

void t.test('policy lint – a policy with errors reports only its errors, counted, and no hash', async t => {
  const result = lint(policyWith({ defaultAction: 'allow' }, { ...allow({ name: 'a', from: [TD], to: [`${TD}/api/`] }), ports: [0] }))
  // The trust-domain-only pattern and the allow under a default allow would warn; errors come first, alone.
  expectProblems(t, result, [
    { at: 'policy.yaml:6:10', path: '/rules/0/to/0', rule: 'a', severity: 'error', message: /^bad pattern ".*": path cannot have a trailing slash/ },
    { at: 'policy.yaml:8:13', path: '/rules/0/ports/0', rule: 'a', severity: 'error', message: /must be >= 1/ }
  ])
  t.equal(result.hash, undefined)

  // rule() writes '*' as it is: `from: [*]`, an alias.
  const syntax = lint(policy({ name: 'a', from: ['*'] }))
  expectProblems(t, syntax, [{ at: 'policy.yaml:4:12', path: '', severity: 'error', message: /alias/i }])
  t.equal(syntax.hash, undefined)
})

void t.test('policy lint – lints a YAML or JSON file, naming the file in every location; a missing file is one error', async t => {
  const file = join(dir, 'policy.yaml')
  writeFileSync(file, policyWith({ defaultAction: 'allow' }, feApi))
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
  const result = lint(policy(
    allow({ name: 'partly', from: block([TD, `${TD}/frontend`]), to: [`${TD}/api`, 'spiffe://other.example'] }),
    deny({ name: 'never', from: [ANY], to: [TD, 'spiffe://other.example'] }),
    deny({ name: 'never-from', from: block([TD]), to: [`${TD}/api`] }),
    deny({ name: 'never-both', from: [TD], to: [TD] })
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
  expectProblems(t, lint(policyWith({ tcpPorts: [9000, 502] },
    allow({ name: 'modbus-read', from: [ANY], to: [`${TD}/plc`], ports: [502], http: { methods: ['GET'] } }),
    allow({ name: 'mixed', from: [ANY], to: [`${TD}/gateway`], ports: [8080, 9000, 4840], http: block({ paths: ['/status'] }) }),
    allow({ name: 'custom-only', from: [ANY], to: [`${TD}/historian`], ports: [9000], http: { methods: ['POST'] } }),
    deny({ name: 'two-tcp', from: [ANY], to: [`${TD}/db`], ports: [5432, 6379], http: { methods: ['GET'] } }),
    allow({ name: 'any-port', from: [ANY], to: [`${TD}/historian`], http: { methods: ['GET'] } }),
    allow({ name: 'plain-tcp', from: [ANY], to: [`${TD}/plc`], ports: [502, 9000] })
  )), [
    { at: 'policy.yaml:8:11', path: '/rules/0/http', rule: 'modbus-read', message: /^can never match: HTTP conditions on TCP-only port 502 \(Modbus\/TCP\)$/ },
    { at: 'policy.yaml:15:7', path: '/rules/1/http', rule: 'mixed', message: /^HTTP conditions never match on TCP-only ports 9000 \(listed in tcpPorts\), 4840 \(OPC UA\)$/ },
    { at: 'policy.yaml:21:11', path: '/rules/2/http', rule: 'custom-only', message: /^can never match: HTTP conditions on TCP-only port 9000 \(listed in tcpPorts\)$/ },
    { at: 'policy.yaml:27:11', path: '/rules/3/http', rule: 'two-tcp', message: /^can never match: HTTP conditions on TCP-only ports 5432 \(PostgreSQL\), 6379 \(Redis\)$/ }
  ])
})

void t.test('policy lint – warns that an allow rule has no effect under defaultAction allow', async t => {
  const text = (defaultAction: string): string => policyWith({ defaultAction },
    feApi,
    noGuests,
    dryRun(allow({ name: 'trial', from: [`${TD}/backend`], to: [`${TD}/api`] }))
  )
  expectProblems(t, lint(text('allow')), [
    { at: 'policy.yaml:7:13', path: '/rules/0/action', rule: 'fe-api', message: /^has no effect: the default action is already allow, and deny rules win over allow rules$/ },
    { at: 'policy.yaml:15:13', path: '/rules/2/action', rule: 'trial', message: /^has no effect/ }
  ])
  expectProblems(t, lint(text('deny')), [])
})

void t.test('policy lint – warns that a later allow is shadowed by an earlier allow that covers it', async t => {
  const cases: Array<[string, RuleFields, RuleFields]> = [
    ['a * segment covers an exact ID', allow({ from: [`${TD}/*`], to: [`${TD}/api`] }), feAllow()],
    ['a bare * covers anything',
      allow({ from: [ANY], to: [`${TD}/api`] }),
      allow({ from: [`${TD}/frontend`, 'spiffe://other.example/x/**'], to: [`${TD}/api`] })],
    ['** covers deeper IDs and a deeper **',
      allow({ from: [`${TD}/line-1/**`], to: [ANY] }),
      allow({ from: [`${TD}/line-1/cell-2/plc`, `${TD}/line-1/cell-3/**`, `${TD}/line-1/*`], to: [ANY] })],
    ['spiffe://td/** covers the trust domain\'s workloads',
      allow({ from: [`${TD}/**`], to: [`${TD}/**`] }),
      allow({ from: [`${TD}/*/reader`], to: [`${TD}/ns/*/sa/api`] })],
    ['each pattern covered by one of several',
      allow({ from: [`${TD}/frontend`, `${TD}/backend`], to: [`${TD}/api`] }),
      allow({ from: [`${TD}/backend`], to: [`${TD}/api`] })],
    ['no ports covers some ports', allow({ from: [ANY], to: [ANY] }), feAllow({ ports: [8443] })],
    ['more ports cover fewer', feAllow({ ports: [80, 443, 8443] }), feAllow({ ports: [8443, 80] })],
    ['no http covers http', feAllow(), feAllow({ http: { methods: ['GET'], paths: ['/v1/items'] } })],
    ['/v1/* covers /v1/a and /v1/b/*', feAllow({ http: { paths: ['/v1/*'] } }), feAllow({ http: { paths: ['/v1/a', '/v1/b/*'] } })],
    ['http without paths covers http with paths', feAllow({ http: { methods: ['GET'] } }), feAllow({ http: { methods: ['GET'], paths: ['/v1/a'] } })],
    ['a superset of methods covers a subset',
      feAllow({ http: { methods: ['GET', 'HEAD', 'POST'] } }),
      feAllow({ http: { methods: ['HEAD', 'GET'] } })],
    ['an identical rule',
      feAllow({ ports: [8443], http: { methods: ['GET'], paths: ['/v1/*'] } }),
      feAllow({ ports: [8443], http: { methods: ['GET'], paths: ['/v1/*'] } })],
    ['a deny covers a later deny', deny({ from: [`${TD}/vendor/**`], to: [ANY] }), deny({ from: [`${TD}/vendor/laptop`], to: [`${TD}/plc`] })]
  ]
  for (const [label, first, second] of cases) {
    await t.test(label, async t => {
      expectProblems(t, lint(twoRules(first, second)), [
        { at: `policy.yaml:${secondLine(first)}:5`, path: '/rules/1', rule: 'second', message: shadowed('first', firstLine) }
      ])
    })
  }
})

void t.test('policy lint – does not warn about rules that only partly overlap', async t => {
  const cases: Array<[string, RuleFields, RuleFields]> = [
    ['* in different positions', allow({ from: [`${TD}/*/reader`], to: [`${TD}/api`] }), allow({ from: [`${TD}/line-1/*`], to: [`${TD}/api`] })],
    ['an exact ID before a * covering it', feAllow(), allow({ from: [`${TD}/*`], to: [`${TD}/api`] })],
    ['** needs at least one more segment', allow({ from: [`${TD}/line-1/**`], to: [ANY] }), allow({ from: [`${TD}/line-1`], to: [ANY] })],
    ['a * segment does not cover **', allow({ from: [`${TD}/*`], to: [ANY] }), allow({ from: [`${TD}/**`], to: [ANY] })],
    ['another trust domain',
      allow({ from: ['spiffe://plant.example/**'], to: [ANY] }),
      allow({ from: ['spiffe://other.example/frontend'], to: [ANY] })],
    ['one pattern of several not covered', feAllow(), feAllow({ from: [`${TD}/frontend`, `${TD}/backend`] })],
    ['from covered but not to', allow({ from: [`${TD}/**`], to: [`${TD}/api`] }), feAllow({ to: [`${TD}/db`] })],
    ['different ports', feAllow({ ports: [80] }), feAllow({ ports: [443] })],
    ['fewer ports before more', feAllow({ ports: [80] }), feAllow({ ports: [80, 443] })],
    ['ports before no ports', feAllow({ ports: [80] }), feAllow()],
    ['a rule with http before one without', feAllow({ http: { methods: ['GET'] } }), feAllow()],
    ['an exact path before its prefix', feAllow({ http: { paths: ['/v1/a'] } }), feAllow({ http: { paths: ['/v1/*'] } })],
    ['another path prefix', feAllow({ http: { paths: ['/v1/*'] } }), feAllow({ http: { paths: ['/v2/x', '/v1/a'] } })],
    ['an exact path does not cover its prefix form', feAllow({ http: { paths: ['/v1/'] } }), feAllow({ http: { paths: ['/v1/*'] } })],
    ['fewer methods before more', feAllow({ http: { methods: ['GET'] } }), feAllow({ http: { methods: ['GET', 'POST'] } })],
    ['methods only before paths only', feAllow({ http: { methods: ['GET'] } }), feAllow({ http: { paths: ['/v1/*'] } })],
    ['paths only before methods only', feAllow({ http: { paths: ['/v1/*'] } }), feAllow({ http: { methods: ['GET'] } })],
    ['an allow before a deny it covers: the deny still wins', allow({ from: [ANY], to: [ANY] }), deny({ from: [`${TD}/vendor/**`], to: [ANY] })],
    ['a deny that only partly covers an allow',
      deny({ from: [`${TD}/vendor/**`], to: [`${TD}/plc`] }),
      allow({ from: [`${TD}/*/laptop`], to: [`${TD}/plc`] })]
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
  const laptopAllow = allow({ from: [`${TD}/vendor/laptop`], to: [`${TD}/plc`], ports: [502] })
  const vendorDeny = deny({ from: [`${TD}/vendor/**`], to: [ANY] })
  // The deny comes later in the file.
  expectProblems(t, lint(twoRules(laptopAllow, vendorDeny)), [
    { at: `policy.yaml:${firstLine}:5`, path: '/rules/0', rule: 'first', message: neverAllows('second', secondLine(laptopAllow)) }
  ])
  // The deny comes first.
  expectProblems(t, lint(twoRules(vendorDeny, laptopAllow)), [
    { at: `policy.yaml:${secondLine(vendorDeny)}:5`, path: '/rules/1', rule: 'second', message: neverAllows('first', firstLine) }
  ])
})

void t.test('policy lint – a dry-run rule does not shadow an enforced rule', async t => {
  const cases: Array<[string, RuleFields, RuleFields]> = [
    ['a dry-run deny before an enforced allow', dryRun(deny({ from: [ANY], to: [ANY] })), feAllow()],
    ['a dry-run allow before an enforced allow', dryRun(allow({ from: [ANY], to: [ANY] })), feAllow()],
    ['a dry-run deny before an enforced deny', dryRun(deny({ from: [ANY], to: [ANY] })), deny(feToApi)]
  ]
  for (const [label, first, second] of cases) {
    await t.test(label, async t => { expectProblems(t, lint(twoRules(first, second)), []) })
  }
})

void t.test('policy lint – an enforced rule shadows a dry-run rule it covers', async t => {
  const enforcedAllow = allow({ from: [ANY], to: [`${TD}/api`] })
  const dryRunAllow = dryRun(feAllow())
  // The enforced allow comes first in the file.
  expectProblems(t, lint(twoRules(enforcedAllow, dryRunAllow)), [
    { at: `policy.yaml:${secondLine(enforcedAllow)}:5`, path: '/rules/1', rule: 'second', message: shadowed('first', firstLine) }
  ])
  // Enforced rules decide before dry-run rules of the same action wherever they are in the file.
  expectProblems(t, lint(twoRules(dryRunAllow, enforcedAllow)), [
    { at: `policy.yaml:${firstLine}:5`, path: '/rules/0', rule: 'first', message: shadowed('second', secondLine(dryRunAllow)) }
  ])
  // A dry-run deny after an enforced deny that covers it is never reported.
  const enforcedDeny = deny({ from: [ANY], to: [ANY] })
  const dryRunDeny = dryRun(deny({ from: [`${TD}/vendor/**`], to: [ANY] }))
  expectProblems(t, lint(twoRules(enforcedDeny, dryRunDeny)), [
    { at: `policy.yaml:${secondLine(enforcedDeny)}:5`, path: '/rules/1', rule: 'second', message: shadowed('first', firstLine) }
  ])
  // An earlier dry-run rule of the same action and mode is reported first.
  const dryRunAny = dryRun(allow({ from: [ANY], to: [`${TD}/api`] }))
  expectProblems(t, lint(twoRules(dryRunAny, dryRunAllow)), [
    { at: `policy.yaml:${secondLine(dryRunAny)}:5`, path: '/rules/1', rule: 'second', message: shadowed('first', firstLine) }
  ])
  // An enforced deny covering a dry-run allow: the allow could never be reported.
  expectProblems(t, lint(twoRules(dryRunAllow, enforcedDeny)), [
    { at: `policy.yaml:${firstLine}:5`, path: '/rules/0', rule: 'first', message: neverAllows('second', secondLine(dryRunAllow)) }
  ])
})

void t.test('policy lint – rules that can never match are reported as such, not as shadowing each other', async t => {
  // Both rules' HTTP conditions are all on a TCP-only port: each is reported as dead, the second not as shadowed.
  const dead = allow({ from: [ANY], to: [ANY], ports: [502], http: { methods: ['GET'] } })
  const live = allow({ from: [`${TD}/scada`], to: [`${TD}/plc`], ports: [502], http: { methods: ['GET'] } })
  expectProblems(t, lint(twoRules(dead, live)), [
    { at: 'policy.yaml:7:11', path: '/rules/0/http', rule: 'first', message: /^can never match: HTTP conditions on TCP-only port 502/ },
    { at: 'policy.yaml:13:11', path: '/rules/1/http', rule: 'second', message: /^can never match: HTTP conditions on TCP-only port 502/ }
  ])
})

void t.test('policy lint – several warnings of different kinds come sorted by line, and counted', async t => {
  const result = lint(policyWith({ defaultAction: 'allow' },
    allow({ name: 'readers', from: [`${TD}/*`], to: [`${TD}/api`, 'spiffe://plant.example'] }),
    feApi,
    deny({ name: 'modbus', from: [ANY], to: [`${TD}/plc`], ports: [502, 8080], http: { methods: ['GET'] } })
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
  const result = lint(policy(
    allow({ name: 'readers', from: [`${TD}/*`], to: [`${TD}/api`] }),
    feApi,
    deny({ name: 'no-frontend', from: [`${TD}/frontend`], to: [ANY] })
  ))
  t.same(result.problems.map(p => [p.location, p.rule]), [['policy.yaml:7:5', 'fe-api']], 'one warning, on fe-api')
  t.match(result.problems[0]?.message, neverAllows('no-frontend', 11), 'names the deny that decides')
})
