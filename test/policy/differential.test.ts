import t from 'tap'
import { compilePolicy } from '../../policy/engine'
import type { Decision, PolicyRequest } from '../../policy/engine'
import { checkRule, explainDecision } from '../../policy/explain'
import type { PlainRequest } from '../../policy/explain'
import { parseSpiffeId } from '../../spiffe/id'
import { seededRandom } from '../../bench/seeded-random'

// Differential test: the compiled engine (tries, bitsets, precedence order) against a plain evaluator written
// here from the spec alone — ID patterns become regular expressions, rules are scanned in file order.
// Seeded, so a failure reproduces: POLICY_DIFF_SEED=<seed> npx tap test/policy/differential.test.ts

class Random {
  readonly next: () => number
  constructor (seed: number) { this.next = seededRandom(seed) }
  int (lo: number, hi: number): number { return lo + Math.floor(this.next() * (hi - lo + 1)) }
  chance (p: number): boolean { return this.next() < p }
  pick<T> (items: readonly T[]): T { return items[Math.floor(this.next() * items.length)] }
  /** 1..max distinct items made by `make` (fewer when `make` keeps repeating itself). */
  distinct<T> (max: number, make: () => T): T[] {
    const out: T[] = []
    const want = this.int(1, max)
    for (let tries = 0; out.length < want && tries < want * 4; tries++) {
      const item = make()
      if (!out.includes(item)) out.push(item)
    }
    return out
  }
}

// A small universe, so that rules match requests often.
const TRUST_DOMAINS = ['a.example', 'b.example', 'a.example.net']
const SEGMENTS = ['x', 'y', 'z']
const PORTS = [80, 443, 8080]
const REQUEST_PORTS = [80, 443, 8080, 9000]
const METHODS = ['GET', 'POST', 'DELETE']
const REQUEST_METHODS = ['GET', 'POST', 'DELETE', 'PUT']
const PATH_PATTERNS = ['/v1/*', '/v1/a', '/v1', '/*', '/v2*', '/', '/v1/a/*', '/v2x/y']
const REQUEST_PATHS = ['/v1/a', '/v1', '/v1/', '/v1/a/b', '/v2', '/v2x/y', '/', '/other']

interface Rule {
  name: string
  from: string[]
  to: string[]
  ports?: number[]
  http?: { methods?: string[], paths?: string[] }
  action: 'allow' | 'deny'
  mode?: 'enforce' | 'dry-run'
}

interface Doc {
  version: 1
  defaultAction?: 'allow' | 'deny'
  rules: Rule[]
}

/** Mostly the first two trust domains, and short IDs, so that exact patterns match now and then. */
const randomTrustDomain = (random: Random): string => random.chance(0.15) ? TRUST_DOMAINS[2] : random.pick(TRUST_DOMAINS.slice(0, 2))

function randomId (random: Random): string {
  const n = random.pick([1, 1, 2, 2, 2, 3, 3, 4])
  let id = `spiffe://${randomTrustDomain(random)}`
  for (let i = 0; i < n; i++) id += `/${random.pick(SEGMENTS)}`
  return id
}

function randomIdPattern (random: Random): string {
  const roll = random.next()
  if (roll < 0.05) return '*'
  const td = randomTrustDomain(random)
  if (roll < 0.12) return `spiffe://${td}/**`
  if (roll < 0.15) return `spiffe://${td}` // a trust domain's own ID: matches no workload
  const deep = random.chance(0.25)
  const n = deep ? random.pick([0, 1, 1, 2]) : random.pick([1, 1, 2, 2, 3, 4])
  const segments: string[] = []
  const starRate = random.pick([0, 0.2, 0.5])
  for (let i = 0; i < n; i++) segments.push(random.chance(starRate) ? '*' : random.pick(SEGMENTS))
  if (deep) segments.push('**')
  return `spiffe://${td}/${segments.join('/')}`
}

function randomRule (random: Random, name: string): Rule {
  const rule: Rule = {
    name,
    from: random.distinct(3, () => randomIdPattern(random)),
    to: random.distinct(3, () => randomIdPattern(random)),
    action: random.chance(0.5) ? 'allow' : 'deny'
  }
  if (random.chance(0.35)) rule.ports = random.distinct(2, () => random.pick(PORTS))
  if (random.chance(0.35)) {
    const shape = random.int(0, 2)
    rule.http = {}
    if (shape !== 1) rule.http.methods = random.distinct(2, () => random.pick(METHODS))
    if (shape !== 0) rule.http.paths = random.distinct(3, () => random.pick(PATH_PATTERNS))
  }
  const mode = random.next()
  if (mode < 0.25) rule.mode = 'dry-run'
  else if (mode < 0.45) rule.mode = 'enforce' // else left out: enforce by default
  return rule
}

function randomDoc (random: Random, ruleCount: number): Doc {
  const doc: Doc = { version: 1, rules: [] }
  const defaultAction = random.next()
  if (defaultAction < 0.4) doc.defaultAction = 'allow'
  else if (defaultAction < 0.8) doc.defaultAction = 'deny' // else left out: deny by default
  for (let i = 0; i < ruleCount; i++) doc.rules.push(randomRule(random, `r${i}`))
  return doc
}

function randomRequest (random: Random): PlainRequest {
  const from = randomId(random)
  const to = randomId(random)
  const port = random.chance(0.8) ? random.pick(REQUEST_PORTS) : undefined
  const http = random.chance(0.5) ? { method: random.pick(REQUEST_METHODS), path: random.pick(REQUEST_PATHS) } : undefined
  return { from, to, ...(port === undefined ? {} : { port }), ...(http === undefined ? {} : { http }) }
}

// ---- The reference evaluator, from the spec only ----

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/** `*` alone: any ID; `*` segment: one segment; trailing `**`: one or more segments; else literal. */
function idPatternRegExp (pattern: string): RegExp {
  if (pattern === '*') return /^.*$/
  const rest = pattern.slice('spiffe://'.length)
  const [td, ...segments] = rest.split('/')
  let source = `^spiffe://${escapeRegExp(td)}`
  segments.forEach((segment, i) => {
    if (segment === '**' && i === segments.length - 1) source += '(/[^/]+)+'
    else if (segment === '*') source += '/[^/]+'
    else source += `/${escapeRegExp(segment)}`
  })
  return new RegExp(`${source}$`)
}

const regExpCache = new Map<string, RegExp>()
function idMatches (pattern: string, id: string): boolean {
  let re = regExpCache.get(pattern)
  if (re === undefined) regExpCache.set(pattern, re = idPatternRegExp(pattern))
  return re.test(id)
}

function pathMatches (pattern: string, path: string): boolean {
  return pattern.endsWith('*') ? path.startsWith(pattern.slice(0, -1)) : path === pattern
}

function referenceMatches (rule: Rule, request: PlainRequest): boolean {
  if (!rule.from.some(p => idMatches(p, request.from))) return false
  if (!rule.to.some(p => idMatches(p, request.to))) return false
  if (rule.ports !== undefined && (request.port === undefined || !rule.ports.includes(request.port))) return false
  if (rule.http !== undefined) {
    const http = request.http
    if (http === undefined) return false
    if (rule.http.methods !== undefined && !rule.http.methods.includes(http.method)) return false
    if (rule.http.paths !== undefined && !rule.http.paths.some(p => pathMatches(p, http.path))) return false
  }
  return true
}

interface Outcome {
  allow: boolean
  rule: string
  dryRun: boolean
  wouldBe?: { allow: boolean, rule: string }
}

function referenceDecide (doc: Doc, request: PlainRequest): { outcome: Outcome, matching: boolean[] } {
  const matching = doc.rules.map(rule => referenceMatches(rule, request))
  const isDryRun = (rule: Rule): boolean => rule.mode === 'dry-run'
  const first = (action: 'allow' | 'deny', dryRun: boolean): Rule | undefined =>
    doc.rules.find((rule, i) => matching[i] && rule.action === action && isDryRun(rule) === dryRun)
  const enforced = first('deny', false) ?? first('allow', false)
  const outcome: Outcome = enforced === undefined
    ? { allow: (doc.defaultAction ?? 'deny') === 'allow', rule: 'default', dryRun: false }
    : { allow: enforced.action === 'allow', rule: enforced.name, dryRun: false }
  const full = first('deny', false) ?? first('deny', true) ?? first('allow', false) ?? first('allow', true)
  if (full !== undefined && isDryRun(full)) {
    outcome.dryRun = true
    outcome.wouldBe = { allow: full.action === 'allow', rule: full.name }
  }
  return { outcome, matching }
}

function outcomeOf (decision: Decision): Outcome {
  const outcome: Outcome = { allow: decision.allow, rule: decision.rule, dryRun: decision.dryRun }
  if (decision.wouldBe !== undefined) outcome.wouldBe = { allow: decision.wouldBe.allow, rule: decision.wouldBe.rule }
  return outcome
}

const sameOutcome = (a: Outcome, b: Outcome): boolean =>
  a.allow === b.allow && a.rule === b.rule && a.dryRun === b.dryRun &&
  a.wouldBe?.allow === b.wouldBe?.allow && a.wouldBe?.rule === b.wouldBe?.rule

void t.test('policy engine – agrees with a plain reference evaluator on random policies', async t => {
  const envSeed = process.env.POLICY_DIFF_SEED
  const seed = envSeed === undefined || envSeed === '' ? 0x5eed2026 : Number(envSeed) >>> 0
  const seedText = `seed ${seed}`
  const mismatches: string[] = []
  const stats = { decisions: 0, byRule: 0, dryRun: 0, httpMatches: 0, severalMatch: 0, multiWord: 0, ruleChecks: 0, explains: 0 }

  const policies = [
    ...Array.from({ length: 400 }, () => ({ minRules: 1, maxRules: 40, requests: 30, checkAll: true })),
    ...Array.from({ length: 20 }, (_, i) => ({ minRules: 200, maxRules: 300, requests: 150, checkAll: i % 4 === 0 }))
  ]
  policies.forEach((spec, p) => {
    // Each policy has its own seed, so one failing policy can be regenerated alone.
    const policySeed = (seed + Math.imul(p + 1, 0x9e3779b9)) >>> 0
    const random = new Random(policySeed)
    const doc = randomDoc(random, random.int(spec.minRules, spec.maxRules))
    if (doc.rules.length > 32) stats.multiWord++
    const policy = compilePolicy(doc)
    for (let q = 0; q < spec.requests; q++) {
      const request = randomRequest(random)
      const where = `${seedText}, policy ${p} (seed ${policySeed}), request ${q}`
      const { outcome: expected, matching } = referenceDecide(doc, request)
      // Sometimes give the IDs as parsed SpiffeIds, as the sidecar does.
      const asked: PolicyRequest = random.chance(0.2) ? { ...request, from: parseSpiffeId(request.from), to: parseSpiffeId(request.to) } : request
      const decision = policy.decide(asked)
      const actual = outcomeOf(decision)
      stats.decisions++
      if (expected.rule !== 'default') stats.byRule++
      if (expected.dryRun) stats.dryRun++
      if (doc.rules.some((rule, i) => matching[i] && rule.http !== undefined)) stats.httpMatches++
      if (matching.filter(Boolean).length >= 2) stats.severalMatch++
      if (!sameOutcome(actual, expected)) {
        mismatches.push(`${where}: engine ${JSON.stringify(actual)}, reference ${JSON.stringify(expected)}; request ${JSON.stringify(request)}; policy ${JSON.stringify(doc)}`)
      }
      const explanation = explainDecision(policy, request).decision
      const explained = outcomeOf(explanation)
      stats.explains++
      if (!sameOutcome(explained, expected) || explanation.reason !== decision.reason || explanation.wouldBe?.reason !== decision.wouldBe?.reason) {
        mismatches.push(`${where}: explainDecision ${JSON.stringify(explanation)}, decide ${JSON.stringify(decision)}, reference ${JSON.stringify(expected)}; request ${JSON.stringify(request)}`)
      }
      if (spec.checkAll || q < 10) {
        doc.rules.forEach((rule, i) => {
          stats.ruleChecks++
          const check = checkRule(policy.document.rules[i], i, request)
          if ((check.mismatches.length === 0) !== matching[i]) {
            mismatches.push(`${where}: checkRule(${rule.name}) says ${check.mismatches.length === 0 ? 'match' : `no match (${check.mismatches.join('; ')})`}, reference says ${matching[i] ? 'match' : 'no match'}; rule ${JSON.stringify(rule)}; request ${JSON.stringify(request)}`)
          }
        })
      }
    }
  })

  const comparisons = stats.decisions + stats.explains + stats.ruleChecks
  t.same(mismatches.slice(0, 5), [], `${seedText}: the first mismatches (of ${mismatches.length})`)
  t.equal(mismatches.length, 0, `${seedText}: no mismatch in ${comparisons} comparisons`)
  t.ok(stats.decisions >= 10_000, `${seedText}: ${stats.decisions} decisions compared (≥ 10,000)`)
  t.ok(comparisons >= 100_000, `${seedText}: ${comparisons} comparisons in all, with explainDecision and checkRule (≥ 100,000)`)
  const share = (n: number): string => `${n} of ${stats.decisions} (${(100 * n / stats.decisions).toFixed(1)}%)`
  t.ok(stats.byRule >= stats.decisions * 0.3, `${seedText}: ${share(stats.byRule)} decisions made by a rule, not the default (≥ 30%)`)
  t.ok(stats.byRule <= stats.decisions * 0.9, `${seedText}: ${share(stats.decisions - stats.byRule)} decisions fell to the default (≥ 10%)`)
  t.ok(stats.severalMatch >= stats.decisions * 0.15, `${seedText}: ${share(stats.severalMatch)} requests matched several rules, so precedence decided (≥ 15%)`)
  t.ok(stats.dryRun >= stats.decisions * 0.04, `${seedText}: ${share(stats.dryRun)} decisions reported a dry-run rule (≥ 4%)`)
  t.ok(stats.httpMatches >= stats.decisions * 0.04, `${seedText}: ${share(stats.httpMatches)} requests matched a rule with HTTP conditions (≥ 4%)`)
  t.ok(stats.multiWord >= 20, `${seedText}: ${stats.multiWord} policies of more than 32 rules (several bitset words) tested`)
})
