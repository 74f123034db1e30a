/**
 * Explanations for people (`chaperone policy check`, `policy matrix`): which conditions of a rule a request
 * meets and which it does not, in words, and on a default decision the nearest rule that could have changed it.
 * This is a plain scan of every rule, for the CLI; the sidecar uses the compiled engine.
 */
import type { PolicyRule } from './document'
import type { CompiledPolicy, Decision } from './engine'
import { DEFAULT_RULE } from './engine'
import { matchesIdPattern, parseIdPattern } from './id-pattern'
import type { IdPattern } from './id-pattern'
import { matchesPathPattern, parsePathPattern } from './http-path'
import type { PathPattern } from './http-path'

/** A request with IDs as (valid) strings. */
export interface PlainRequest {
  readonly from: string
  readonly to: string
  readonly port?: number
  readonly http?: { readonly method: string, readonly path: string }
}

export interface RuleCheck {
  readonly rule: PolicyRule
  readonly index: number
  /** Which conditions the request fails, in words; empty when the rule matches. */
  readonly mismatches: readonly string[]
  /** Failed conditions apart from the IDs (ports, HTTP): the rule matches the pair on other traffic. */
  readonly onlyTrafficMismatches: boolean
}

export function checkRule (rule: PolicyRule, index: number, request: PlainRequest): RuleCheck {
  const idMismatches: string[] = []
  const trafficMismatches: string[] = []
  for (const side of ['from', 'to'] as const) {
    const patterns = rule[side].map(text => parseIdPattern(text) as IdPattern)
    if (!patterns.some(p => matchesIdPattern(p, request[side]))) idMismatches.push(`${side}: ${request[side]} matches none of ${rule[side].join(', ')}`)
  }
  if (rule.ports !== undefined && (request.port === undefined || !rule.ports.includes(request.port))) {
    trafficMismatches.push(request.port === undefined
      ? `port: the rule needs port ${rule.ports.join(' or ')}, and no port was given`
      : `port: ${request.port} is not ${rule.ports.join(' or ')}`)
  }
  if (rule.http !== undefined) trafficMismatches.push(...httpMismatches(rule.http, request.http))
  return { rule, index, mismatches: [...idMismatches, ...trafficMismatches], onlyTrafficMismatches: idMismatches.length === 0 && trafficMismatches.length > 0 }
}

function httpMismatches (conditions: NonNullable<PolicyRule['http']>, http: PlainRequest['http']): string[] {
  if (http === undefined) return ['http: the rule has HTTP conditions, which never match a plain TCP connection']
  const mismatches: string[] = []
  if (conditions.methods !== undefined && !conditions.methods.includes(http.method)) {
    mismatches.push(`method: ${http.method} is not ${conditions.methods.join(' or ')}`)
  }
  const paths = conditions.paths?.map(text => parsePathPattern(text) as PathPattern)
  if (conditions.paths !== undefined && paths?.some(p => matchesPathPattern(p, http.path)) !== true) {
    mismatches.push(`path: ${http.path} matches none of ${conditions.paths.join(', ')}`)
  }
  return mismatches
}

export interface Explanation {
  readonly decision: Decision
  /** On a default decision: the rule closest to changing it (fewest unmet conditions), with what did not match. */
  readonly nearest?: RuleCheck
}

export function explainDecision (policy: CompiledPolicy, request: PlainRequest): Explanation {
  const decision = policy.decide(request)
  if (decision.rule !== DEFAULT_RULE) return { decision }
  const checks = policy.document.rules.map((rule, index) => checkRule(rule, index, request))
  // Rules of the other action could have changed a default decision; prefer them.
  const changing = checks.filter(check => check.rule.action !== policy.document.defaultAction)
  const candidates = changing.length > 0 ? changing : checks
  const nearest = candidates.reduce<RuleCheck | undefined>((best, check) => best === undefined || check.mismatches.length < best.mismatches.length ? check : best, undefined)
  return nearest === undefined ? { decision } : { decision, nearest }
}
