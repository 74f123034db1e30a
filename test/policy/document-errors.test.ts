import t from 'tap'
import { parsePolicy } from '../../policy/document'
import { ANY, TD, block, expectProblems, policy, policyWith, rule, yaml } from '../helpers/policy-text'
import type { RuleFields } from '../helpers/policy-text'
import { escapeRegExp, policyError, problemsOf, feApiRule } from '../helpers/policy-document'

// Every problem a policy file can have, each pinned to the line and column a person has to fix. Policies are
// written inline, with yaml() (line N of the file is its N-th argument) or with policy() and rule() (one line per
// key: see test/helpers/policy-text.ts).

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
  expectProblems(t, problemsOf(yaml('- version: 1')), [{ at: 'policy.yaml:1:1', path: '', message: /^must be a mapping of fields \(name: value\), not a list or a single value$/ }])
  expectProblems(t, problemsOf(''), [{ at: undefined, path: '', message: /^the file is empty: expected a mapping of fields \(name: value\)$/ }])
})

void t.test('policy file – rejects any version but 1', async t => {
  for (const version of ['2', '"1"', '0', '1.5', 'one']) {
    expectProblems(t, problemsOf(yaml(`version: ${version}`)), [
      { at: 'policy.yaml:1:10', path: '/version', message: /^must be 1$/ }
    ])
  }
  expectProblems(t, problemsOf('{\n  "version": 2,\n  "rules": []\n}'), [
    { at: 'policy.yaml:2:14', path: '/version', message: /^must be 1$/ }
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
