import t from 'tap'
import { parseSpiffeId } from '../../spiffe/id'
import { compilePolicy } from '../../policy/engine'
import type { PolicyRequest } from '../../policy/engine'
import { parsePolicy } from '../../policy/document'
import { thrown } from '../helpers/errors'

// The decision engine's semantics, one behaviour at a time. The differential test checks the same engine
// against a reference evaluator on random policies; these pin each rule of the format by name.

const TD = 'spiffe://plant.example'
const rule = (name: string, from: string[], to: string[], extra: Record<string, unknown> = {}): object =>
  ({ name, from, to, action: 'allow', ...extra })
const policyOf = (rules: object[], defaultAction?: 'allow' | 'deny'): ReturnType<typeof compilePolicy> =>
  compilePolicy({ version: 1, ...(defaultAction === undefined ? {} : { defaultAction }), rules })
const decide = (policy: ReturnType<typeof compilePolicy>, from: string, to: string, extra: Partial<PolicyRequest> = {}): string => {
  const decision = policy.decide({ from, to, ...extra })
  return `${decision.allow ? 'allow' : 'deny'}:${decision.rule}`
}

void t.test('policy engine – an empty policy denies, with the default as the deciding rule and a reason', async t => {
  const decision = policyOf([]).decide({ from: `${TD}/a`, to: `${TD}/b` })
  t.same(decision, { allow: false, rule: 'default', reason: 'no rule matched; the default action is deny', dryRun: false })
  t.ok(Object.isFrozen(decision), 'decisions are shared and frozen')
  t.equal(decide(policyOf([], 'allow'), `${TD}/a`, `${TD}/b`), 'allow:default')
})

void t.test('policy engine – each pattern form matches what it says and nothing more', async t => {
  const cases: Array<[string, string[], string[]]> = [
    // pattern, IDs it matches, IDs it does not
    [`${TD}/frontend`, [`${TD}/frontend`], [`${TD}/frontend/x`, `${TD}/front`, 'spiffe://other.example/frontend']],
    [`${TD}/*/api`, [`${TD}/a/api`, `${TD}/b/api`], [`${TD}/api`, `${TD}/a/b/api`, `${TD}/a/apix`]],
    [`${TD}/ns/*`, [`${TD}/ns/a`], [`${TD}/ns`, `${TD}/ns/a/b`]],
    [`${TD}/ns/**`, [`${TD}/ns/a`, `${TD}/ns/a/b/c`], [`${TD}/ns`, `${TD}/nsx/a`, 'spiffe://other.example/ns/a']],
    [`${TD}/**`, [`${TD}/a`, `${TD}/a/b`], ['spiffe://other.example/a']],
    [`${TD}/*/x/**`, [`${TD}/a/x/b`, `${TD}/a/x/b/c`], [`${TD}/a/x`, `${TD}/a/y/b`]],
    ['*', [`${TD}/a`, 'spiffe://other.example/deep/path'], []]
  ]
  for (const [pattern, matching, other] of cases) {
    const policy = policyOf([rule('r', [pattern], ['*'])])
    for (const id of matching) t.equal(decide(policy, id, `${TD}/server`), 'allow:r', `${pattern} matches ${id}`)
    for (const id of other) t.equal(decide(policy, id, `${TD}/server`), 'deny:default', `${pattern} does not match ${id}`)
    // The same index serves the destination side.
    const reversed = policyOf([rule('r', ['*'], [pattern])])
    for (const id of matching) t.equal(decide(reversed, `${TD}/client`, id), 'allow:r', `to: ${pattern} matches ${id}`)
    for (const id of other) t.equal(decide(reversed, `${TD}/client`, id), 'deny:default', `to: ${pattern} does not match ${id}`)
  }
})

void t.test('policy engine – a matching deny wins over any allow, wherever it is in the file', async t => {
  const policy = policyOf([
    rule('allow-all', ['*'], ['*']),
    rule('allow-fe', [`${TD}/frontend`], [`${TD}/api`]),
    rule('no-vendor', [`${TD}/vendor/**`], ['*'], { action: 'deny' }),
    rule('no-vendor-exact', [`${TD}/vendor/x`], ['*'], { action: 'deny' })
  ])
  t.equal(decide(policy, `${TD}/vendor/x`, `${TD}/api`), 'deny:no-vendor', 'the first deny in file order is reported')
  t.equal(decide(policy, `${TD}/frontend`, `${TD}/api`), 'allow:allow-all', 'the first allow in file order is reported')
  t.equal(policy.decide({ from: `${TD}/vendor/y`, to: `${TD}/api` }).reason, 'rule "no-vendor" denies it')
  t.equal(decide(policyOf([rule('deny', ['*'], ['*'], { action: 'deny' })], 'allow'), `${TD}/a`, `${TD}/b`), 'deny:deny')
})

void t.test('policy engine – ports: a rule with ports matches only a listed port, and not a request without one', async t => {
  const policy = policyOf([rule('api-8080', ['*'], [`${TD}/api`], { ports: [8080, 8443] })])
  t.equal(decide(policy, `${TD}/a`, `${TD}/api`, { port: 8080 }), 'allow:api-8080')
  t.equal(decide(policy, `${TD}/a`, `${TD}/api`, { port: 8443 }), 'allow:api-8080')
  t.equal(decide(policy, `${TD}/a`, `${TD}/api`, { port: 9090 }), 'deny:default')
  t.equal(decide(policy, `${TD}/a`, `${TD}/api`), 'deny:default')
  for (const port of [0, 65536, 1.5, Number.NaN]) {
    t.equal(thrown(() => policy.decide({ from: `${TD}/a`, to: `${TD}/api`, port })).code, 'ERR_POLICY_REQUEST_INVALID', `port ${port}`)
  }
})

void t.test('policy engine – a rule with HTTP conditions never matches plain TCP, and matches HTTP by method and path', async t => {
  const policy = policyOf([
    rule('read-v1', [`${TD}/frontend`], [`${TD}/api`], { http: { methods: ['GET', 'HEAD'], paths: ['/v1/*', '/health'] } }),
    rule('no-admin', ['*'], [`${TD}/api`], { action: 'deny', http: { paths: ['/admin*'] } }),
    rule('any-post', [`${TD}/writer`], [`${TD}/api`], { http: { methods: ['POST'] } })
  ], 'allow')
  const fe = `${TD}/frontend`
  const api = `${TD}/api`
  const http = (method: string, path: string): Partial<PolicyRequest> => ({ http: { method, path } })
  t.equal(decide(policyOf([rule('read-v1', [fe], [api], { http: { methods: ['GET'] } })]), fe, api), 'deny:default', 'plain TCP never matches an HTTP rule')
  t.equal(decide(policy, fe, api, http('GET', '/v1/items')), 'allow:read-v1')
  t.equal(decide(policy, fe, api, http('HEAD', '/health')), 'allow:read-v1')
  t.equal(decide(policy, fe, api, http('GET', '/health/x')), 'allow:default', 'an exact path is exact')
  t.equal(decide(policy, fe, api, http('GET', '/v1')), 'allow:default', '/v1/* needs the slash')
  t.equal(decide(policy, fe, api, http('GET', '/admin')), 'deny:no-admin')
  t.equal(decide(policy, fe, api, http('GET', '/administrator/x')), 'deny:no-admin', 'a trailing * is a plain prefix')
  t.equal(decide(policy, `${TD}/writer`, api, http('POST', '/anything')), 'allow:any-post', 'methods alone, any path')
  t.equal(decide(policy, fe, api), 'allow:default', 'plain TCP under default allow: the HTTP deny does not apply')
})

void t.test('policy engine – both directions: inbound decides peer → self, outbound self → server', async t => {
  // One sidecar's view: it is spiffe://plant.example/api; clients may call it, it may call only the db.
  const self = parseSpiffeId(`${TD}/api`)
  const policy = policyOf([
    rule('fe-to-api', [`${TD}/frontend`], [`${TD}/api`]),
    rule('api-to-db', [`${TD}/api`], [`${TD}/db`], { ports: [5432] })
  ])
  const inbound = (peer: string): string => decide(policy, peer, self.toString())
  const outbound = (server: string, port: number): string => decide(policy, self.toString(), server, { port })
  t.equal(inbound(`${TD}/frontend`), 'allow:fe-to-api')
  t.equal(inbound(`${TD}/db`), 'deny:default', 'the db may not call the api')
  t.equal(outbound(`${TD}/db`, 5432), 'allow:api-to-db')
  t.equal(outbound(`${TD}/frontend`, 8080), 'deny:default', 'the api may not call the frontend')
  t.equal(policy.decide({ from: parseSpiffeId(`${TD}/frontend`), to: self }).rule, 'fe-to-api', 'parsed SpiffeIds work as well as strings')
})

void t.test('policy engine – dry-run rules are reported with what they would do, never enforced', async t => {
  const policy = policyOf([
    rule('fe-api', [`${TD}/frontend`], [`${TD}/api`]),
    rule('try-deny-vendor', [`${TD}/vendor/**`], ['*'], { action: 'deny', mode: 'dry-run' }),
    rule('vendor-api', [`${TD}/vendor/**`], [`${TD}/api`]),
    rule('try-allow-db', ['*'], [`${TD}/db`], { mode: 'dry-run' }),
    rule('deny-db-root', [`${TD}/root`], [`${TD}/db`], { action: 'deny' }),
    rule('try-deny-root', [`${TD}/root`], ['*'], { action: 'deny', mode: 'dry-run' })
  ])
  t.same(policy.decide({ from: `${TD}/vendor/a`, to: `${TD}/api` }), {
    allow: true, rule: 'vendor-api', reason: 'rule "vendor-api" allows it', dryRun: true,
    wouldBe: { allow: false, rule: 'try-deny-vendor', reason: 'dry-run: rule "try-deny-vendor" would deny it' }
  }, 'a dry-run deny reports, the enforced allow governs')
  t.match(policy.decide({ from: `${TD}/frontend`, to: `${TD}/db` }), { allow: false, rule: 'default', dryRun: true, wouldBe: { allow: true, rule: 'try-allow-db' } },
    'a dry-run allow under the default deny reports, the connection stays denied')
  t.same(policy.decide({ from: `${TD}/root`, to: `${TD}/db` }), { allow: false, rule: 'deny-db-root', reason: 'rule "deny-db-root" denies it', dryRun: false },
    'an enforced deny decides before a dry-run deny: nothing to report')
  t.same(policy.decide({ from: `${TD}/frontend`, to: `${TD}/api` }).dryRun, false)
})

void t.test('policy engine – compilePolicy checks plain values; an invalid request ID is an error, not a silent match', async t => {
  const err = thrown(() => compilePolicy({ version: 1, rules: [{ name: 'x', from: ['spiffe://a/**/b'], to: ['*'], action: 'allow' }] }))
  t.equal(err.code, 'ERR_POLICY_INVALID')
  t.match(err.message, /from\[0\]: bad pattern "spiffe:\/\/a\/\*\*\/b": \*\* must be the last segment/)
  const policy = policyOf([rule('any', ['*'], ['*'])], 'allow')
  t.equal(thrown(() => policy.decide({ from: 'spiffe://plant.example/a/../b', to: `${TD}/b` })).code, 'ERR_SPIFFE_ID_INVALID')
  t.equal(thrown(() => policy.decide({ from: `${TD}/a`, to: 'not an id' })).code, 'ERR_SPIFFE_ID_INVALID')
})

void t.test('policy engine – decide is usable detached; rule locations come from the file', async t => {
  const loaded = parsePolicy(`version: 1
rules:
  - name: fe-api
    from: [${TD}/frontend]
    to: [${TD}/api]
    action: allow
`, 'policy.yaml')
  const policy = compilePolicy(loaded)
  const { decide: detached } = policy
  t.equal(detached({ from: `${TD}/frontend`, to: `${TD}/api` }).rule, 'fe-api')
  t.equal(policy.ruleLocation('fe-api'), 'policy.yaml:3:5')
  t.equal(policy.ruleLocation('nope'), undefined)
  t.equal(policy.hash, loaded.hash)
})

void t.test('policy engine – many rules over many IDs decide the same after the per-ID cache is full', async t => {
  // More distinct IDs than the cache holds: evicted IDs are looked up again with the same answer.
  const rules = Array.from({ length: 100 }, (_, i) => rule(`r${i}`, [`${TD}/app-${i}/**`], [`${TD}/svc-${i % 10}`]))
  const policy = policyOf(rules)
  for (let round = 0; round < 2; round++) {
    let wrong = 0
    for (let i = 0; i < 5000; i++) {
      const expected = `allow:r${i % 100}`
      if (decide(policy, `${TD}/app-${i % 100}/instance-${i}`, `${TD}/svc-${i % 10}`) !== expected) wrong++
    }
    t.equal(wrong, 0, `round ${round + 1}: 5,000 distinct sources`)
  }
})

void t.test('policy engine – mayAllow: some request of the pair at the port could be allowed, whatever its HTTP method and path', async t => {
  const a = `${TD}/a`
  const b = `${TD}/b`
  const http = { http: { methods: ['GET'], paths: ['/public/*'] } }
  const cases: Array<[string, object[], 'allow' | 'deny' | undefined, number | undefined, boolean]> = [
    ['no rule, default deny', [], undefined, 8080, false],
    ['no rule, default allow', [], 'allow', 8080, true],
    ['an allow of the pair', [rule('r', [a], [b])], undefined, 8080, true],
    ['an allow with HTTP conditions only', [rule('r', [a], [b], http)], undefined, 8080, true],
    ['an allow of another port', [rule('r', [a], [b], { ports: [9090] })], undefined, 8080, false],
    ['an allow with ports, no port given', [rule('r', [a], [b], { ports: [9090] })], undefined, undefined, false],
    ['an allow of another pair', [rule('r', [b], [a])], undefined, 8080, false],
    ['a dry-run allow', [rule('r', [a], [b], { mode: 'dry-run' })], undefined, 8080, false],
    ['a deny of every request beats an allow', [rule('d', [a], [b], { action: 'deny' }), rule('r', [a], [b])], undefined, 8080, false],
    ['a deny of every request beats the default allow', [rule('d', [a], [b], { action: 'deny' })], 'allow', 8080, false],
    ['a deny of some requests leaves the allow', [rule('d', [a], [b], { action: 'deny', ...http }), rule('r', [a], [b])], undefined, 8080, true],
    ['a deny of another port leaves the allow', [rule('d', [a], [b], { action: 'deny', ports: [9090] }), rule('r', [a], [b])], undefined, 8080, true],
    ['a dry-run deny leaves the allow', [rule('d', [a], [b], { action: 'deny', mode: 'dry-run' }), rule('r', [a], [b])], undefined, 8080, true]
  ]
  for (const [name, rules, defaultAction, port, expected] of cases) {
    t.equal(policyOf(rules, defaultAction).mayAllow({ from: a, to: b, port }), expected, name)
  }
  // Whenever mayAllow says no, no request of the pair at that port is allowed.
  const policy = policyOf([rule('d', [a], [b], { action: 'deny' }), rule('r', [a], [b], http)])
  t.equal(policy.mayAllow({ from: parseSpiffeId(a), to: parseSpiffeId(b), port: 80 }), false)
  t.equal(decide(policy, a, b, { port: 80, http: { method: 'GET', path: '/public/x' } }), 'deny:d')
})
