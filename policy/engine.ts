/**
 * The decision engine: a policy compiled into two ID indexes (sources and destinations) whose bitsets are ANDed,
 * with rule positions ordered by precedence, so the first candidate whose port and HTTP conditions hold decides.
 *
 * Precedence: enforced deny, dry-run deny, enforced allow, dry-run allow; file order within each. So a matching
 * deny wins, else a matching allow, else the default action, and a dry-run rule is reported (never enforced)
 * when it would have decided. A rule with HTTP conditions never matches a request without HTTP (plain TCP).
 */
import type { SpiffeId } from '../spiffe/id'
import type { Locate } from '../config/load'
import { isLoadedPolicy, policyFromValue } from './document'
import type { LoadedPolicy, PolicyDocument, PolicyRule } from './document'
import { PolicyRequestError } from './errors'
import { parseIdPattern } from './id-pattern'
import type { IdPattern } from './id-pattern'
import { IdPatternIndex } from './id-index'
import { parsePathPattern } from './http-path'

/** One connection or request to decide. */
export interface PolicyRequest {
  /** The client: on inbound the verified peer, on outbound the sidecar's own ID. */
  readonly from: SpiffeId | string
  /** The server: on inbound the sidecar's own ID, on outbound the server's verified ID. */
  readonly to: SpiffeId | string
  /** The destination (app) port. Rules with `ports` match only when it is given and listed. */
  readonly port?: number
  /** For HTTP requests only: the method (uppercase) and the normalized path (see normalizeRequestPath). */
  readonly http?: { readonly method: string, readonly path: string }
}

export interface Verdict {
  readonly allow: boolean
  /** The deciding rule's name, or `default`. */
  readonly rule: string
  readonly reason: string
}

export interface Decision extends Verdict {
  /** True when a dry-run rule would have decided: `wouldBe` says how. `allow` is always what is enforced. */
  readonly dryRun: boolean
  readonly wouldBe?: Verdict
}

export const DEFAULT_RULE = 'default'

interface CompiledRule {
  readonly name: string
  readonly dryRun: boolean
  readonly ports: ReadonlySet<number> | undefined
  readonly http: boolean
  readonly methods: ReadonlySet<string> | undefined
  readonly exactPaths: ReadonlySet<string> | undefined
  readonly pathPrefixes: readonly string[] | undefined
  /** The decision when this rule decides and no dry-run rule came first (shared, frozen: no allocation). */
  readonly decision: Decision
}

const PRECEDENCE = (rule: PolicyRule): number => (rule.action === 'deny' ? 0 : 2) + (rule.mode === 'dry-run' ? 1 : 0)

export class CompiledPolicy {
  readonly source: string
  readonly hash: string
  readonly document: PolicyDocument
  /** file:line:column of a field by JSON pointer (`/rules/0`), when the policy came from a file. */
  readonly locate: Locate
  /** Decides a request; usable detached (`const { decide } = policy`). */
  readonly decide: (request: PolicyRequest) => Decision
  /**
   * Whether some request from `from` to `to` at `port` could be allowed, whatever its HTTP method and path: false
   * when no enforced allow rule (nor an allow default) can match, or an enforced deny without HTTP conditions does.
   * The sidecar refuses such a peer's connection at once, before it holds a slot. Usable detached.
   */
  readonly mayAllow: (request: Omit<PolicyRequest, 'http'>) => boolean

  constructor (loaded: LoadedPolicy) {
    this.locate = loaded.locate
    this.source = loaded.source
    this.hash = loaded.hash
    this.document = loaded.document
    const ordered = loaded.document.rules.map((rule, index) => ({ rule, index }))
      .sort((a, b) => PRECEDENCE(a.rule) - PRECEDENCE(b.rule) || a.index - b.index)
    const fromIndex = new IdPatternIndex(ordered.length)
    const toIndex = new IdPatternIndex(ordered.length)
    ordered.forEach(({ rule }, position) => {
      for (const text of rule.from) fromIndex.add(parseIdPattern(text) as IdPattern, position)
      for (const text of rule.to) toIndex.add(parseIdPattern(text) as IdPattern, position)
    })
    const rules = ordered.map(({ rule }) => compileRule(rule))
    const defaultDecision = verdictOf(loaded.document.defaultAction === 'allow', DEFAULT_RULE, `no rule matched; the default action is ${loaded.document.defaultAction}`)
    this.decide = request => decide(request, fromIndex, toIndex, rules, defaultDecision)
    this.mayAllow = request => mayAllow(request, fromIndex, toIndex, rules, defaultDecision.allow)
  }

  /** file:line:column of a rule, when the policy came from a file. */
  ruleLocation (name: string): string | undefined {
    const index = this.document.rules.findIndex(rule => rule.name === name)
    return index === -1 ? undefined : this.locate(`/rules/${index}`)
  }
}

/** Compiles a policy (from loadPolicy, or a plain value, which is checked first: PolicyError when invalid). */
export function compilePolicy (policy: LoadedPolicy | object): CompiledPolicy {
  return new CompiledPolicy(isLoadedPolicy(policy) ? policy : policyFromValue(policy))
}

function compileRule (rule: PolicyRule): CompiledRule {
  const paths = rule.http?.paths?.map(text => parsePathPattern(text)).filter(p => typeof p !== 'string')
  const exact = paths?.flatMap(p => 'exact' in p ? [p.exact] : [])
  const prefixes = paths?.flatMap(p => 'prefix' in p ? [p.prefix] : [])
  const verb = rule.action === 'allow' ? 'allows' : 'denies'
  return {
    name: rule.name,
    dryRun: rule.mode === 'dry-run',
    ports: rule.ports === undefined ? undefined : new Set(rule.ports),
    http: rule.http !== undefined,
    methods: rule.http?.methods === undefined ? undefined : new Set(rule.http.methods),
    exactPaths: exact === undefined ? undefined : new Set(exact),
    pathPrefixes: prefixes,
    decision: verdictOf(rule.action === 'allow', rule.name, `rule ${JSON.stringify(rule.name)} ${verb} it`)
  }
}

function verdictOf (allow: boolean, rule: string, reason: string): Decision {
  return Object.freeze({ allow, rule, reason, dryRun: false })
}

/**
 * Calls `visit` with each rule whose sources and destinations match the request, in precedence order, until it
 * returns an answer; undefined when none did.
 */
function firstAnswer<T> (request: Omit<PolicyRequest, 'http'>, fromIndex: IdPatternIndex, toIndex: IdPatternIndex, rules: readonly CompiledRule[], visit: (rule: CompiledRule) => T | undefined): T | undefined {
  const from = fromIndex.match(typeof request.from === 'string' ? request.from : request.from.toString())
  const to = toIndex.match(typeof request.to === 'string' ? request.to : request.to.toString())
  for (let word = 0; word < from.length; word++) {
    let bits = from[word] & to[word]
    while (bits !== 0) {
      const low = bits & -bits
      bits ^= low
      const answer = visit(rules[(word << 5) + 31 - Math.clz32(low)])
      if (answer !== undefined) return answer
    }
  }
  return undefined
}

function decide (request: PolicyRequest, fromIndex: IdPatternIndex, toIndex: IdPatternIndex, rules: readonly CompiledRule[], defaultDecision: Decision): Decision {
  const port = request.port
  if (port !== undefined && !(Number.isInteger(port) && port >= 1 && port <= 65535)) throw new PolicyRequestError(`invalid port ${String(port)}: a port is a whole number from 1 to 65535`)
  let dryRunFirst: CompiledRule | undefined
  const decided = firstAnswer(request, fromIndex, toIndex, rules, rule => {
    if (!conditionsHold(rule, request)) return undefined
    if (!rule.dryRun) return dryRunFirst === undefined ? rule.decision : withDryRun(rule.decision, dryRunFirst)
    dryRunFirst ??= rule
    return undefined
  })
  return decided ?? (dryRunFirst === undefined ? defaultDecision : withDryRun(defaultDecision, dryRunFirst))
}

/** The first enforced rule at this port that settles it answers: an allow, or a deny of every request (no HTTP conditions). */
function mayAllow (request: Omit<PolicyRequest, 'http'>, fromIndex: IdPatternIndex, toIndex: IdPatternIndex, rules: readonly CompiledRule[], defaultAllows: boolean): boolean {
  return firstAnswer(request, fromIndex, toIndex, rules, rule => {
    if (rule.dryRun || !portHolds(rule, request.port)) return undefined
    return rule.decision.allow ? true : rule.http ? undefined : false
  }) ?? defaultAllows
}

function portHolds (rule: CompiledRule, port: number | undefined): boolean {
  return rule.ports === undefined || (port !== undefined && rule.ports.has(port))
}

function conditionsHold (rule: CompiledRule, request: PolicyRequest): boolean {
  if (!portHolds(rule, request.port)) return false
  if (!rule.http) return true
  const http = request.http
  if (http === undefined) return false
  if (rule.methods !== undefined && !rule.methods.has(http.method)) return false
  if (rule.exactPaths === undefined || rule.pathPrefixes === undefined) return true
  return rule.exactPaths.has(http.path) || rule.pathPrefixes.some(prefix => http.path.startsWith(prefix))
}

function withDryRun (enforced: Decision, dryRunRule: CompiledRule): Decision {
  const { allow, rule } = dryRunRule.decision
  return { ...enforced, dryRun: true, wouldBe: { allow, rule, reason: `dry-run: rule ${JSON.stringify(rule)} would ${allow ? 'allow' : 'deny'} it` } }
}
