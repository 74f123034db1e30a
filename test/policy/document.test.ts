import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isLoadedPolicy, loadPolicy, parsePolicy, policyFromValue } from '../../policy/document'
import type { PolicyRule } from '../../policy/document'
import { PolicyError } from '../../policy/errors'
import type { PolicyProblem } from '../../policy/errors'
import { thrown } from '../helpers/errors'
import { ANY, TD, block, expectProblems, policy, policyWith, rule, yaml } from '../helpers/policy-text'
import type { RuleFields } from '../helpers/policy-text'

// The policy file as the loader reads it: what a valid file becomes, and every problem a file can have, each
// pinned to the line and column a person has to fix. Policies are written inline, with yaml() (line N of the file
// is its N-th argument) or with policy() and rule() (one line per key: see test/helpers/policy-text.ts).

const dir = mkdtempSync(join(tmpdir(), 'chaperone-policy-document-'))
t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')

function policyError (fn: () => unknown): PolicyError {
  const err = thrown(fn)
  if (!(err instanceof PolicyError)) throw new Error(`expected a PolicyError, got ${err.name}: ${err.message}`)
  return err
}

const problemsOf = (text: string): readonly PolicyProblem[] => policyError(() => parsePolicy(text, 'policy.yaml')).problems

/** The code of whatever fn throws (a bug may throw something other than a ChaperoneError). */
function codeThrown (fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    return (err as { code?: string }).code ?? `${(err as Error).name}: ${(err as Error).message}`
  }
  return 'nothing thrown'
}

/** Rule fe-api, frontend to api, allowed; `between` are the keys written between its `to:` and its `action:`. */
const feApiRule = (between: RuleFields = {}): RuleFields =>
  ({ name: 'fe-api', from: [`${TD}/frontend`], to: [`${TD}/api`], ...between, action: 'allow' })
const feApi = policy(feApiRule())

void t.test('policy file – a valid policy loads with the defaults filled in and the rule as written', async t => {
  const loaded = parsePolicy(feApi, 'policy.yaml')
  t.same(loaded.document, {
    version: 1,
    defaultAction: 'deny',
    rules: [{ name: 'fe-api', from: [`${TD}/frontend`], to: [`${TD}/api`], action: 'allow', mode: 'enforce' }]
  })
  t.notOk('tcpPorts' in loaded.document, 'no tcpPorts invented')
  t.notOk('ports' in loaded.document.rules[0], 'no ports invented: the rule matches any port')
  t.notOk('http' in loaded.document.rules[0], 'no HTTP conditions invented')
  t.equal(loaded.source, 'policy.yaml')
  t.equal(loaded.locate('/rules/0'), 'policy.yaml:3:5', 'a rule is located where its mapping starts')
  t.equal(loaded.locate('/rules/0/to/0'), 'policy.yaml:5:10')
  t.ok(isLoadedPolicy(loaded), 'recognised as a checked policy')
  t.notOk(isLoadedPolicy({ ...loaded }), 'a look-alike copy is not')
  t.notOk(isLoadedPolicy(null))
})

void t.test('policy file – a policy with only a version has defaultAction deny and no rules', async t => {
  const loaded = parsePolicy('version: 1\n', 'policy.yaml')
  t.same(loaded.document, { version: 1, defaultAction: 'deny', rules: [] })
  t.ok(Object.isFrozen(loaded.document.rules), 'the filled-in rules list is frozen too')
})

void t.test('policy file – the loaded policy is frozen all the way down', async t => {
  const loaded = parsePolicy(policyWith({ tcpPorts: [9000] },
    feApiRule({ ports: [8443], http: { methods: ['GET'], paths: ['/v1/*'] } })), 'policy.yaml')
  const rule = loaded.document.rules[0]
  for (const [label, value] of Object.entries({
    loaded, document: loaded.document, tcpPorts: loaded.document.tcpPorts, rules: loaded.document.rules, rule,
    from: rule.from, to: rule.to, ports: rule.ports, http: rule.http, methods: rule.http?.methods, paths: rule.http?.paths
  })) {
    t.ok(Object.isFrozen(value), `${label} is frozen`)
  }
  t.throws(() => { (loaded.document.rules as PolicyRule[]).push(rule) }, TypeError, 'rules cannot be added')
  t.throws(() => { (rule as { action: string }).action = 'deny' }, TypeError, 'a rule cannot be changed')
  t.throws(() => { (loaded as { hash: string }).hash = 'sha256:0000000000000000' }, TypeError, 'the hash cannot be replaced')
})

void t.test('policy file – the hash is sha256: and 16 hex digits, the same however the same policy is written', async t => {
  const commented = yaml(
    '# Who may talk to whom on line 1.',
    'version: 1',
    'rules:',
    '  # The frontend reads the API.',
    '  - name: fe-api',
    `    from: [${TD}/frontend]   # the web UI`,
    `    to: [${TD}/api]`,
    '    ports: [8443]',
    '    action: allow'
  )
  const reordered = yaml(
    'rules:',
    '  - action: allow',
    '    mode: enforce',
    '    ports:',
    '      - 8443',
    `    to: ["${TD}/api"]`,
    `    from: ['${TD}/frontend']`,
    '    name: fe-api',
    'defaultAction: deny',
    'version: 1'
  )
  const json = JSON.stringify({
    defaultAction: 'deny',
    rules: [{ to: [`${TD}/api`], ports: [8443], name: 'fe-api', action: 'allow', from: [`${TD}/frontend`] }],
    version: 1
  }, null, 2)
  const value = { version: 1, rules: [{ name: 'fe-api', from: [`${TD}/frontend`], to: [`${TD}/api`], ports: [8443], action: 'allow' }] }

  const hash = parsePolicy(commented, 'policy.yaml').hash
  t.match(hash, /^sha256:[0-9a-f]{16}$/)
  t.equal(parsePolicy(reordered, 'policy.yaml').hash, hash, 'YAML with other key order, quoting, block lists and explicit defaults')
  t.equal(parsePolicy(json, 'policy.json').hash, hash, 'JSON')
  t.equal(policyFromValue(value).hash, hash, 'a value')
  t.equal(parsePolicy(commented, 'elsewhere.yaml').hash, hash, 'the file name is not part of the meaning')
  t.equal(parsePolicy('version: 1\nrules: []\n').hash, parsePolicy('version: 1\n').hash, 'rules: [] is the default')
})

void t.test('policy file – the hash changes whenever the policy means something else', async t => {
  const rule = { name: 'fe-api', from: [`${TD}/frontend`], to: [`${TD}/api`], ports: [8443], action: 'allow' }
  const base = { version: 1, rules: [rule] }
  const anyPort: Record<string, unknown> = { ...rule }
  delete anyPort.ports
  const variants: Record<string, object> = {
    base,
    'another action': { version: 1, rules: [{ ...rule, action: 'deny' }] },
    'another port': { version: 1, rules: [{ ...rule, ports: [8444] }] },
    'any port': { version: 1, rules: [anyPort] },
    'another source': { version: 1, rules: [{ ...rule, from: [`${TD}/backend`] }] },
    'dry-run': { version: 1, rules: [{ ...rule, mode: 'dry-run' }] },
    'default allow': { ...base, defaultAction: 'allow' },
    'tcpPorts': { ...base, tcpPorts: [9000] },
    'HTTP conditions': { version: 1, rules: [{ ...rule, http: { methods: ['GET'] } }] },
    'another rule name': { version: 1, rules: [{ ...rule, name: 'frontend-api' }] },
    'one more rule': { version: 1, rules: [rule, { ...rule, name: 'second' }] },
    'rules in another order': { version: 1, rules: [{ ...rule, name: 'second' }, rule] },
    'no rules': { version: 1 }
  }
  const hashes = new Map<string, string>()
  for (const [label, value] of Object.entries(variants)) {
    const hash = policyFromValue(value).hash
    t.notOk(hashes.has(hash), `${label}: ${hash} is not the hash of ${hashes.get(hash) ?? 'another variant'}`)
    hashes.set(hash, label)
  }
})

void t.test('policy file – policyFromValue checks a copy and leaves its input untouched', async t => {
  const value = { version: 1, rules: [{ name: 'fe-api', from: [`${TD}/frontend`], to: [`${TD}/api`], action: 'allow' }] }
  const before = structuredClone(value)
  const loaded = policyFromValue(value, 'inline')
  t.same(value, before, 'no defaults written into the input')
  t.notOk('defaultAction' in value)
  t.notOk('mode' in value.rules[0])
  t.notOk(Object.isFrozen(value), 'the input is not frozen')
  t.notOk(Object.isFrozen(value.rules[0].from))
  t.not(loaded.document, value)
  t.equal(loaded.document.rules[0].mode, 'enforce')
  t.equal(loaded.source, 'inline')
  t.equal(loaded.locate('/rules/0'), undefined, 'a value has no positions')
  value.rules[0].action = 'deny'
  t.equal(loaded.document.rules[0].action, 'allow', 'later changes to the input do not reach the policy')
  t.equal(policyFromValue(before).source, '<policy>', 'the default label')

  const invalid = { version: 2, rules: [{ name: 'x', from: ['nope'], to: ['*'], action: 'allow' }] }
  const err = policyError(() => policyFromValue(invalid, 'inline'))
  expectProblems(t, err.problems, [
    { at: undefined, path: '/version', message: /must be equal to constant/ },
    { at: undefined, path: '/rules/0/from/0', rule: 'x', message: /bad pattern "nope"/ }
  ])
  t.match(err.message, /^invalid policy \(inline\):\n {2}inline: error: version: must be equal to constant\n {2}inline: error: rule "x": from\[0\]: bad pattern "nope"/)
  t.same(invalid.version, 2, 'an invalid input is left alone too')
  t.notOk('mode' in invalid.rules[0])
})

void t.test('policy file – rejects a YAML syntax error with its line and column', async t => {
  // An unquoted * is a YAML alias: the commonest slip in a policy file (`from: [*]`: rule() writes '*' as it is).
  const err = policyError(() => parsePolicy(policy({ ...feApiRule(), from: ['*'] }), 'policy.yaml'))
  t.equal(err.code, 'ERR_POLICY_INVALID')
  expectProblems(t, err.problems, [{ at: 'policy.yaml:4:12', path: '', message: /alias/i }])

  expectProblems(t, problemsOf(yaml('version: 1', 'rules:', '\t- name: fe-api')), [
    { at: 'policy.yaml:3:1', path: '', message: /tab/i }
  ])
  expectProblems(t, problemsOf(yaml('version: 1', 'rules:', '  - name: "fe-api', '    action: allow')), [
    { at: 'policy.yaml:5:1', path: '', message: /missing closing "quote/i }
  ])
  expectProblems(t, problemsOf('{\n  "version": 1,\n  "rules": [,]\n}\n'), [
    { at: 'policy.yaml:3:13', path: '', message: /unexpected ,/i }
  ])
})

void t.test('policy file – rejects a duplicate YAML key where the second one is written', async t => {
  expectProblems(t, problemsOf(yaml('version: 1', 'rules:', ...rule(feApiRule()), '    action: deny')), [
    { at: 'policy.yaml:7:5', path: '', message: /keys must be unique/ }
  ])
  expectProblems(t, problemsOf(yaml('version: 1', 'rules: []', 'version: 1')), [
    { at: 'policy.yaml:3:1', path: '', message: /keys must be unique/ }
  ])
  expectProblems(t, problemsOf('{"version": 1, "version": 1}'), [
    { at: 'policy.yaml:1:16', path: '', message: /keys must be unique/ }
  ])
})

void t.test('policy file – rejects an unknown top-level key with its line and column', async t => {
  expectProblems(t, problemsOf(yaml(
    'version: 1',
    'defaultaction: allow',
    'rules: []'
  )), [{ at: 'policy.yaml:2:1', path: '/defaultaction', message: /^unknown field$/ }])
})

void t.test('policy file – rejects an unknown key in a rule or its http conditions, naming the rule', async t => {
  expectProblems(t, problemsOf(policy(
    feApiRule({ port: 443 }),
    { name: 'fe-http', from: [ANY], to: [ANY], http: { method: ['GET'] }, action: 'allow' }
  )), [
    { at: 'policy.yaml:6:5', path: '/rules/0/port', rule: 'fe-api', message: /^unknown field$/ },
    { at: 'policy.yaml:11:12', path: '/rules/1/http/method', rule: 'fe-http', message: /^unknown field$/ }
  ])
})

void t.test('policy file – rejects missing required fields at the mapping that lacks them', async t => {
  const missing = ['name', 'from', 'to', 'action'].map(field =>
    ({ at: 'policy.yaml:3:5', path: '/rules/0', rule: '#1', message: new RegExp(`^missing required field "${field}"$`) }))
  expectProblems(t, problemsOf(policy({ description: 'a rule with nothing else' })), missing)
  expectProblems(t, problemsOf(yaml('# no version', 'rules: []')), [
    { at: 'policy.yaml:2:1', path: '', message: /^missing required field "version"$/ }
  ])
})

void t.test('policy file – rejects a document that is not a mapping', async t => {
  expectProblems(t, problemsOf(yaml('- version: 1')), [{ at: 'policy.yaml:1:1', path: '', message: /must be object/ }])
  expectProblems(t, problemsOf(''), [{ at: undefined, path: '', message: /must be object/ }])
})

void t.test('policy file – rejects any version but 1', async t => {
  for (const version of ['2', '"1"', '0', '1.5', 'one']) {
    expectProblems(t, problemsOf(yaml(`version: ${version}`)), [
      { at: 'policy.yaml:1:10', path: '/version', message: /must be equal to constant/ }
    ])
  }
  expectProblems(t, problemsOf('{\n  "version": 2,\n  "rules": []\n}'), [
    { at: 'policy.yaml:2:14', path: '/version', message: /must be equal to constant/ }
  ])
})

void t.test('policy file – rejects a defaultAction other than deny or allow', async t => {
  for (const action of ['reject', 'Deny', 'true', '""']) {
    expectProblems(t, problemsOf(yaml('version: 1', `defaultAction: ${action}`)), [
      { at: 'policy.yaml:2:16', path: '/defaultAction', message: /^must be one of "deny", "allow"$/ }
    ])
  }
})

void t.test('policy file – rejects bad ports: 0, above 65535, a string, a duplicate, an empty list', async t => {
  expectProblems(t, problemsOf(policyWith({ tcpPorts: [9000, 65536] },
    { name: 'plc', from: [ANY], to: [ANY], ports: [0, 70000, '"80"', 502, 502], action: 'allow' },
    { name: 'empty-ports', from: [ANY], to: [ANY], ports: [], action: 'allow' }
  )), [
    { at: 'policy.yaml:2:18', path: '/tcpPorts/1', message: /must be <= 65535/ },
    { at: 'policy.yaml:7:12', path: '/rules/0/ports', rule: 'plc', message: /must NOT have duplicate items/ },
    { at: 'policy.yaml:7:13', path: '/rules/0/ports/0', rule: 'plc', message: /must be >= 1/ },
    { at: 'policy.yaml:7:16', path: '/rules/0/ports/1', rule: 'plc', message: /must be <= 65535/ },
    { at: 'policy.yaml:7:23', path: '/rules/0/ports/2', rule: 'plc', message: /must be integer/ },
    { at: 'policy.yaml:12:12', path: '/rules/1/ports', rule: 'empty-ports', message: /must NOT have fewer than 1 items/ }
  ])
})

void t.test('policy file – rejects an empty from or to list', async t => {
  expectProblems(t, problemsOf(policy(
    { ...feApiRule(), name: 'nobody', from: [] },
    { ...feApiRule(), name: 'nowhere', to: [] }
  )), [
    { at: 'policy.yaml:4:11', path: '/rules/0/from', rule: 'nobody', message: /must NOT have fewer than 1 items/ },
    { at: 'policy.yaml:9:9', path: '/rules/1/to', rule: 'nowhere', message: /must NOT have fewer than 1 items/ }
  ])
})

void t.test('policy file – rejects a rule name that is not a plain token, or too long', async t => {
  const named = (name: string): string => policy({ name, from: [ANY], to: [ANY], action: 'allow' })
  for (const name of ['-bad', '"has space"', '.hidden', '"a/b"', '"caf\\u00e9"', '""']) {
    expectProblems(t, problemsOf(named(name)), [
      { at: 'policy.yaml:3:11', path: '/rules/0/name', rule: JSON.parse(name.startsWith('"') ? name : JSON.stringify(name)) as string, message: /^a rule name is letters, digits, "\.", "_" and "-", starting with a letter or digit$/ }
    ])
  }
  const long = 'a'.repeat(129)
  expectProblems(t, problemsOf(named(long)), [
    { at: 'policy.yaml:3:11', path: '/rules/0/name', rule: long, message: /must NOT have more than 128 characters/ }
  ])
  t.doesNotThrow(() => parsePolicy(named('a'.repeat(128))), '128 characters are allowed')
  t.doesNotThrow(() => parsePolicy(named('0fe_api-v2.1')), 'digits, dots, underscores, dashes')
  expectProblems(t, problemsOf(named('42')), [
    { at: 'policy.yaml:3:11', path: '/rules/0/name', rule: '#1', message: /must be string/ }
  ])
})

/** The start of rule "reader", from and to any peer. */
const anyReader: RuleFields = { name: 'reader', from: [ANY], to: [ANY] }

void t.test('policy file – rejects an HTTP method that is not an uppercase token', async t => {
  expectProblems(t, problemsOf(policy({ ...anyReader, http: { methods: ['get', 'GET', '"P OST"'] }, action: 'allow' })), [
    { at: 'policy.yaml:6:22', path: '/rules/0/http/methods/0', rule: 'reader', message: /^an HTTP method is an uppercase token, like GET or POST$/ },
    { at: 'policy.yaml:6:32', path: '/rules/0/http/methods/2', rule: 'reader', message: /^an HTTP method is an uppercase token/ }
  ])
})

void t.test('policy file – rejects an empty http object', async t => {
  expectProblems(t, problemsOf(policy({ ...anyReader, http: {}, action: 'allow' })), [
    { at: 'policy.yaml:6:11', path: '/rules/0/http', rule: 'reader', message: /must NOT have fewer than 1 properties/ }
  ])
})

void t.test('policy file – rejects a bad action or mode', async t => {
  expectProblems(t, problemsOf(policy({ ...anyReader, action: 'permit', mode: 'dryrun' })), [
    { at: 'policy.yaml:6:13', path: '/rules/0/action', rule: 'reader', message: /^must be one of "allow", "deny"$/ },
    { at: 'policy.yaml:7:11', path: '/rules/0/mode', rule: 'reader', message: /^must be one of "enforce", "dry-run"$/ }
  ])
})

void t.test('policy file – rejects every malformed SPIFFE-ID pattern, each at its own position with the reason', async t => {
  // [pattern, how it is written in YAML when plain text will not do, the reason]
  const bad: Array<[string, string | undefined, RegExp]> = [
    ['plant.example/api', undefined, /must be a SPIFFE ID \(spiffe:\/\/trust-domain\/path\), a pattern of one, or \* for any peer/],
    ['http://plant.example/api', undefined, /must be a SPIFFE ID/],
    ['**', '"**"', /must be a SPIFFE ID/],
    ['spiffe://Plant.example/api', undefined, /trust domain.*lowercase/],
    ['spiffe://plant.example/**/api', undefined, /\*\* must be the last segment$/],
    ['spiffe://plant.example/a/**/**', undefined, /\*\* must be the last segment$/],
    ['spiffe://plant.example/api-*', undefined, /\* must be a whole path segment \("api-\*" is not supported\)$/],
    ['spiffe://plant.example/*-reader/x', undefined, /\* must be a whole path segment \("\*-reader" is not supported\)$/],
    ['spiffe://plant.example/***', undefined, /\* must be a whole path segment/],
    ['spiffe://*.example/api', undefined, /wildcards cannot stand for the trust domain/],
    ['spiffe://*/api', undefined, /wildcards cannot stand for the trust domain/],
    ['spiffe://**', undefined, /wildcards cannot stand for the trust domain/],
    ['spiffe://plant.example/api/', undefined, /trailing slash/],
    ['spiffe://plant.example/', undefined, /trailing slash/],
    ['spiffe://plant.example//api', undefined, /empty segment/],
    ['spiffe://plant.example/./api', undefined, /dot segment/],
    ['spiffe://plant.example/api/..', undefined, /dot segment/],
    ['spiffe://', undefined, /trust domain is missing/],
    ['spiffe://plant.example:8443/api', undefined, /port is not allowed/]
  ]
  const problems = problemsOf(policy(
    { name: 'patterns', from: [ANY], to: block(bad.map(([pattern, written]) => written ?? pattern)), action: 'allow' }
  ))
  expectProblems(t, problems, bad.map(([pattern, , reason], i) => ({
    at: `policy.yaml:${6 + i}:9`,
    path: `/rules/0/to/${i}`,
    rule: 'patterns',
    message: new RegExp(`^bad pattern ${escapeRegExp(JSON.stringify(pattern))}: .*${reason.source}`)
  })))
})

void t.test('policy file – a bad pattern in from is reported as from[N] of the rule', async t => {
  const err = policyError(() => parsePolicy(policy({ ...feApiRule(), from: [`${TD}/frontend`, `${TD}/api-*`] }), 'policy.yaml'))
  expectProblems(t, err.problems, [
    { at: 'policy.yaml:4:45', path: '/rules/0/from/1', rule: 'fe-api', message: /^bad pattern "spiffe:\/\/plant\.example\/api-\*": \* must be a whole path segment/ }
  ])
  t.match(err.message.split('\n')[1], /^ {2}policy\.yaml:4:45: error: rule "fe-api": from\[1\]: bad pattern "spiffe:\/\/plant\.example\/api-\*": \* must be a whole path segment/)
})

void t.test('policy file – accepts every valid pattern form', async t => {
  const loaded = parsePolicy(policy({
    ...feApiRule(),
    name: 'forms',
    from: block([
      ANY,
      `${TD}/frontend`,
      `${TD}/ns/*/sa/*`,
      `${TD}/*`,
      `${TD}/line-1/**`,
      `${TD}/*/x/**`,
      `${TD}/**`,
      TD,
      'spiffe://other.example/Case_Sensitive/a.b-c/...'
    ])
  }), 'policy.yaml')
  t.equal(loaded.document.rules[0].from.length, 9)
})

void t.test('policy file – rejects bad HTTP path patterns, each with the reason or the normalized form to write', async t => {
  // [pattern, how it is written in YAML when plain text will not do, the reason]
  const bad: Array<[string, string | undefined, RegExp]> = [
    ['/v1/*/items', undefined, /\* is only allowed at the end of a path, as a prefix \(\/v1\/\*\)$/],
    ['/v1/**', undefined, /\* is only allowed at the end of a path/],
    ['v1/items', undefined, /a path pattern must begin with "\/"$/],
    ['/v1/items?limit=1', undefined, /cannot contain a query or fragment/],
    ['/v1/items#top', undefined, /cannot contain a query or fragment/],
    ['/a/../b', undefined, /paths are compared normalized: write "\/b"$/],
    ['/v1/../*', undefined, /paths are compared normalized: write "\/\*"$/],
    ['//a', undefined, /paths are compared normalized: write "\/a"$/],
    ['/a//b', undefined, /paths are compared normalized: write "\/a\/b"$/],
    ['/a/./b', undefined, /paths are compared normalized: write "\/a\/b"$/],
    ['/a/.', undefined, /paths are compared normalized: write "\/a\/"$/],
    ['/%76%31/x', undefined, /paths are compared normalized: write "\/v1\/x"$/],
    ['/v1/%3a', undefined, /paths are compared normalized: write "\/v1\/%3A"$/],
    ['/v1/%2Fadmin', undefined, /encoded slashes and backslashes are refused/],
    ['/v1/%5cadmin', undefined, /encoded slashes and backslashes are refused/],
    ['/v1/%zz', undefined, /malformed percent-escape/],
    ['/a b', '"/a b"', /characters other than visible ASCII/]
  ]
  const problems = problemsOf(policy({
    name: 'paths', from: [ANY], to: [ANY], http: block({ paths: block(bad.map(([pattern, written]) => written ?? pattern)) }), action: 'allow'
  }))
  expectProblems(t, problems, bad.map(([pattern, , reason], i) => ({
    at: `policy.yaml:${8 + i}:11`,
    path: `/rules/0/http/paths/${i}`,
    rule: 'paths',
    message: new RegExp(`^bad path ${escapeRegExp(JSON.stringify(pattern))}: .*${reason.source}`)
  })))
})

void t.test('policy file – accepts normalized exact and prefix path patterns', async t => {
  const loaded = parsePolicy(policy({
    name: 'paths',
    from: [ANY],
    to: [ANY],
    http: block({
      methods: ['GET', 'HEAD', 'M-SEARCH', 'X_CUSTOM1'],
      paths: ['/', '/*', '/v1/*', '/v1/items', '/v1*', '/v1/items/', '/a%3A', '/~user', '/.well-known/*', '/a/...']
    }),
    action: 'allow'
  }))
  t.equal(loaded.document.rules[0].http?.paths?.length, 10)
})

void t.test('policy file – rejects a duplicate rule name at the second, naming where the first is', async t => {
  expectProblems(t, problemsOf(policy(
    feApiRule(),
    { ...feApiRule(), from: [`${TD}/backend`], action: 'deny' },
    { name: 'other', from: [ANY], to: [ANY], action: 'deny' },
    { name: 'fe-api', from: [ANY], to: [ANY], action: 'deny' }
  )), [
    { at: 'policy.yaml:7:11', path: '/rules/1/name', rule: 'fe-api', message: /^duplicate rule name \(rule 1 at policy\.yaml:3:5 has it too\)$/ },
    { at: 'policy.yaml:15:11', path: '/rules/3/name', rule: 'fe-api', message: /^duplicate rule name \(rule 1 at policy\.yaml:3:5 has it too\)$/ }
  ])
})

void t.test('policy file – reports every problem at once, sorted by line then column, each with its rule', async t => {
  const err = policyError(() => parsePolicy(yaml(
    'version: 1',
    'defaultAction: reject',
    'rules:',
    ...rule({ name: 'a', from: [`${TD}/api-*`], to: [ANY], ports: [0], action: 'allow' }),
    ...rule({ from: [ANY], to: ['nope'], action: 'maybe' }),
    "  - {name: c, from: [nope], to: ['*'], ports: [0], action: allow}",
    'extra: true'
  ), 'policy.yaml'))
  expectProblems(t, err.problems, [
    { at: 'policy.yaml:2:16', path: '/defaultAction', message: /must be one of/ },
    { at: 'policy.yaml:5:12', path: '/rules/0/from/0', rule: 'a', message: /bad pattern/ },
    { at: 'policy.yaml:7:13', path: '/rules/0/ports/0', rule: 'a', message: /must be >= 1/ },
    { at: 'policy.yaml:9:5', path: '/rules/1', rule: '#2', message: /missing required field "name"/ },
    { at: 'policy.yaml:10:10', path: '/rules/1/to/0', rule: '#2', message: /bad pattern "nope"/ },
    { at: 'policy.yaml:11:13', path: '/rules/1/action', rule: '#2', message: /must be one of "allow", "deny"/ },
    { at: 'policy.yaml:12:22', path: '/rules/2/from/0', rule: 'c', message: /bad pattern "nope"/ },
    { at: 'policy.yaml:12:48', path: '/rules/2/ports/0', rule: 'c', message: /must be >= 1/ },
    { at: 'policy.yaml:13:1', path: '/extra', message: /unknown field/ }
  ])
})

void t.test('policy file – the error message lists each problem as file:line:col: error: rule "name": field: message', async t => {
  const err = policyError(() => parsePolicy(yaml(
    'version: 1',
    'rules:',
    ...rule({ name: 'fe-api', from: [`${TD}/api-*`], to: [ANY], action: 'allow' }),
    ...rule({ from: [ANY], to: [ANY], http: { methods: ['get'] }, action: 'allow' }),
    'extra: 1'
  ), 'policy.yaml'))
  t.equal(err.code, 'ERR_POLICY_INVALID')
  const lines = err.message.split('\n')
  t.equal(lines.length, 5)
  t.equal(lines[0], 'invalid policy (policy.yaml):')
  t.match(lines[1], /^ {2}policy\.yaml:4:12: error: rule "fe-api": from\[0\]: bad pattern "spiffe:\/\/plant\.example\/api-\*": \* must be a whole path segment/)
  t.match(lines[2], /^ {2}policy\.yaml:7:5: error: rule #2: missing required field "name"$/)
  t.match(lines[3], /^ {2}policy\.yaml:9:22: error: rule #2: http\.methods\[0\]: an HTTP method is an uppercase token/)
  t.match(lines[4], /^ {2}policy\.yaml:11:1: error: extra: unknown field$/)
})

void t.test('policy file – loads a YAML file and a JSON file from disk, with the file name in locations', async t => {
  const yamlFile = join(dir, 'policy.yaml')
  writeFileSync(yamlFile, feApi)
  const fromYaml = loadPolicy(yamlFile)
  t.equal(fromYaml.source, yamlFile)
  t.equal(fromYaml.locate('/rules/0/name'), `${yamlFile}:3:11`)
  t.equal(fromYaml.document.rules[0].name, 'fe-api')

  const jsonFile = join(dir, 'policy.json')
  writeFileSync(jsonFile, JSON.stringify({ version: 1, rules: [{ name: 'fe-api', from: [`${TD}/frontend`], to: [`${TD}/api`], action: 'allow' }] }, null, 2))
  const fromJson = loadPolicy(jsonFile)
  t.equal(fromJson.hash, fromYaml.hash, 'the same policy as JSON has the same hash')
  t.equal(fromJson.locate('/rules/0/name'), `${jsonFile}:5:15`)
  t.ok(Object.isFrozen(fromJson.document))
})

void t.test('policy file – a file with problems names the file in every location and in the message', async t => {
  const file = join(dir, 'bad.yaml')
  writeFileSync(file, policy({ ...feApiRule(), from: [`${TD}/frontend/`], to: [ANY] }))
  const err = policyError(() => loadPolicy(file))
  expectProblems(t, err.problems, [{ at: `${file}:4:12`, path: '/rules/0/from/0', rule: 'fe-api', message: /trailing slash/ }])
  t.equal(err.message.split('\n')[0], `invalid policy (${file}):`)
  t.ok(err.message.split('\n')[1].startsWith(`  ${file}:4:12: error: rule "fe-api": from[0]: bad pattern`))

  const jsonFile = join(dir, 'bad.json')
  writeFileSync(jsonFile, '{\n  "version": 1,\n  "rules": [\n    {"name": "x", "from": ["*"], "to": ["*"], "action": "allow", "mode": "later"}\n  ]\n}\n')
  expectProblems(t, policyError(() => loadPolicy(jsonFile)).problems, [
    { at: `${jsonFile}:4:74`, path: '/rules/0/mode', rule: 'x', message: /must be one of "enforce", "dry-run"/ }
  ])
})

void t.test('policy file – a missing file is ERR_POLICY_INVALID naming the file', async t => {
  const file = join(dir, 'missing.yaml')
  const err = policyError(() => loadPolicy(file))
  t.equal(err.code, 'ERR_POLICY_INVALID')
  expectProblems(t, err.problems, [{ at: undefined, path: '', message: /^cannot read the file: ENOENT/ }])
  t.equal(err.message.split('\n')[0], `invalid policy (${file}):`)
  t.match(err.message.split('\n')[1], `  ${file}: error: cannot read the file: ENOENT`)
  t.equal(codeThrown(() => loadPolicy(dir)), 'ERR_POLICY_INVALID', 'a directory is not a policy file either')
})

// Found while writing these tests, and fixed: hostile or odd input still gets a policy error, not a crash.

void t.test('policy file – an alias to an unset anchor is ERR_POLICY_INVALID', async t => {
  const text = yaml('version: 1', 'rules: *standard')
  t.equal(codeThrown(() => parsePolicy(text, 'policy.yaml')), 'ERR_POLICY_INVALID', 'not a bare ReferenceError')
})

void t.test('policy file – an alias bomb is ERR_POLICY_INVALID, not a crash', async t => {
  const lines = ['version: 1', 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]']
  for (let i = 1; i < 8; i++) lines.push(`a${i}: &a${i} [${Array<string>(10).fill(`*a${i - 1}`).join(', ')}]`)
  t.equal(codeThrown(() => parsePolicy(yaml(...lines), 'policy.yaml')), 'ERR_POLICY_INVALID', 'not a bare ReferenceError')
})

void t.test('policy file – an unknown key containing "/" is located at its own line', async t => {
  const problems = problemsOf(yaml('version: 1', 'rules: []', 'http/paths: [/]'))
  t.equal(problems.length, 1)
  t.equal(problems[0]?.message, 'unknown field')
  t.same(problems.map(p => [p.location, p.path]), [['policy.yaml:3:1', '/http~1paths']], 'located at the key, with an escaped JSON pointer')
})

void t.test('policy file – a value with a key set to undefined has the hash of the same value without the key', async t => {
  const rule = { name: 'fe-api', from: [`${TD}/frontend`], to: [`${TD}/api`], action: 'allow' }
  const hash = policyFromValue({ version: 1, rules: [rule] }).hash
  t.equal(policyFromValue({ version: 1, rules: [rule], tcpPorts: undefined }).hash, hash, 'tcpPorts: undefined')
  t.equal(policyFromValue({ version: 1, rules: [{ ...rule, description: undefined }] }).hash, hash, 'description: undefined')
})

void t.test('policy file – a value that cannot be copied is ERR_POLICY_INVALID', async t => {
  t.equal(codeThrown(() => policyFromValue({ version: 1, rules: [], check: () => true })), 'ERR_POLICY_INVALID', 'not a DataCloneError')
})
