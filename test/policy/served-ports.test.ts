import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parsePolicy } from '../../policy/document'
import { compilePolicy } from '../../policy/engine'
import { lintPolicyFile } from '../../policy/lint'
import { servedPortWarnings } from '../../policy/served-ports'
import type { ServedPorts } from '../../policy/served-ports'
import { ANY, TD, expectProblems, policy } from '../helpers/policy-text'
import type { RuleFields } from '../helpers/policy-text'

// `policy lint --sidecar`: a rule whose ports name none of the app ports a sidecar's listeners serve never decides
// a connection on that sidecar. Each policy is one or two rules; line 3 is the first rule's `- name:`.

const FRONTEND = `${TD}/frontend`
const API = `${TD}/api`
const feToApi = (ports?: number[]): RuleFields => ({ name: 'fe-api', from: [FRONTEND], to: [API], ...(ports === undefined ? {} : { ports }), action: 'allow' })
const served = (inbound: number[] | 'any', outbound: number[] | 'any'): ServedPorts =>
  ({ inbound: inbound === 'any' ? 'any' : new Set(inbound), outbound: outbound === 'any' ? 'any' : new Set(outbound) })
const warnings = (text: string, id: string, ports: ServedPorts): ReturnType<typeof servedPortWarnings> =>
  servedPortWarnings(compilePolicy(parsePolicy(text, 'policy.yaml')), id, ports)

void t.test('served ports – the client\'s outbound listeners serve none of the rule\'s ports: a warning naming both', async t => {
  const text = policy(feToApi([8080]))
  expectProblems(t, warnings(text, FRONTEND, served([], [8443])), [{
    at: 'policy.yaml:6:12',
    path: '/rules/0/ports',
    rule: 'fe-api',
    message: /^never matches on the sidecar of spiffe:\/\/plant\.example\/frontend: the rule lists port 8080; its outbound listeners serve port 8443 \(an outbound listener serves its servicePort, by default its target's port\)$/
  }], 'warning')
  t.same(warnings(text, FRONTEND, served([], [8443, 8080])), [], 'a listener whose service port is listed')
})

void t.test('served ports – the server\'s inbound listeners serve none of the rule\'s ports: a warning naming both', async t => {
  const text = policy(feToApi([9090, 9091]))
  expectProblems(t, warnings(text, API, served([8080, 5020], [])), [{
    at: 'policy.yaml:6:12',
    path: '/rules/0/ports',
    rule: 'fe-api',
    message: /^never matches on the sidecar of spiffe:\/\/plant\.example\/api: the rule lists ports 9090, 9091; its inbound listeners serve ports 5020, 8080 \(an inbound listener serves its target's port\)$/
  }], 'warning')
  t.same(warnings(policy(feToApi([8080, 9090])), API, served([8080], [])), [], 'one listed port served is enough')
})

void t.test('served ports – no warning for rules without ports, rules for other sidecars, or listeners that serve any port', async t => {
  t.same(warnings(policy(feToApi()), FRONTEND, served([1], [2])), [], 'a rule without ports')
  t.same(warnings(policy(feToApi([8080])), `${TD}/db`, served([1], [2])), [], 'neither side names this sidecar')
  t.same(warnings(policy(feToApi([8080])), API, served([8080], [2])), [], 'the rule\'s from does not name the server, so its outbound side is not checked')
  t.same(warnings(policy(feToApi([8080])), FRONTEND, served([1], 'any')), [], 'a transparent outbound listener or an HTTP proxy serves every port')
  t.same(warnings(policy(feToApi([8080])), API, served('any', [])), [], 'a transparent inbound listener serves every port')
  t.same(warnings(policy(feToApi([8080])), FRONTEND, served([1], [])), [], 'no outbound listeners: the rule is for other sidecars\' clients')
})

void t.test('served ports – patterns count: a wildcard rule that names this sidecar on both sides warns for each side', async t => {
  const text = policy({ name: 'anything-on-7', from: [ANY], to: [`${TD}/**`], ports: [7], action: 'deny' })
  const found = warnings(text, API, served([8080], [5432]))
  t.same(found.map(w => [w.location, w.rule, /its (\w+) listeners serve port (\d+)/.exec(w.message)?.slice(1)]), [
    ['policy.yaml:6:12', 'anything-on-7', ['inbound', '8080']],
    ['policy.yaml:6:12', 'anything-on-7', ['outbound', '5432']]
  ])
  const other = warnings(text, 'spiffe://other.example/api', served([8080], [5432]))
  t.same(other.map(w => /its (\w+) listeners/.exec(w.message)?.[1]), ['outbound'], 'another trust domain: * names it as a client, td/** not as a server')
})

void t.test('served ports – lintPolicyFile adds them to the policy\'s own warnings, in file order, counted', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-served-ports-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const file = join(dir, 'policy.yaml')
  writeFileSync(file, policy(feToApi([8080]), { name: 'fe-api-again', from: [FRONTEND], to: [API], ports: [8080], action: 'allow' }))
  const result = lintPolicyFile(file, loaded => servedPortWarnings(loaded, FRONTEND, served([], [8443])))
  t.same(result.problems.map(p => [p.location, p.message.split(':')[0]]), [
    [`${file}:6:12`, 'never matches on the sidecar of spiffe'],
    [`${file}:8:5`, 'is shadowed'],
    [`${file}:11:12`, 'never matches on the sidecar of spiffe']
  ])
  t.equal(result.warnings, 3)
  t.equal(result.errors, 0)
})
