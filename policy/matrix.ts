/**
 * Who can talk to whom: the decision for every ordered pair of IDs on plain TCP (at a port, when one is given).
 * A pair is `some` when the answer depends on the traffic: denied by default but an allow rule matches the pair on
 * certain ports or HTTP requests, or allowed but a deny rule matches it on certain ports or HTTP requests.
 */
import type { CompiledPolicy, Verdict } from './engine'
import { DEFAULT_RULE } from './engine'
import { checkRule } from './explain'

export interface MatrixCell {
  readonly from: string
  readonly to: string
  readonly verdict: 'allow' | 'deny' | 'some'
  /** The rule that decided the plain TCP connection, or `default`. */
  readonly rule: string
  readonly dryRun: boolean
  /** What a dry-run rule would decide, when one would. */
  readonly wouldBe?: Verdict
  /** For `some`: the rules that decide other traffic of this pair. */
  readonly conditionalRules: readonly string[]
}

/** Rows by source, columns by destination, in the order of `ids` (valid SPIFFE IDs). */
export function policyMatrix (policy: CompiledPolicy, ids: readonly string[], port?: number): MatrixCell[][] {
  return ids.map(from => ids.map(to => cellFor(policy, from, to, port)))
}

function cellFor (policy: CompiledPolicy, from: string, to: string, port: number | undefined): MatrixCell {
  const decision = policy.decide({ from, to, port })
  const base = { from, to, rule: decision.rule, dryRun: decision.dryRun, wouldBe: decision.wouldBe }
  if (!decision.allow && decision.rule !== DEFAULT_RULE) return { ...base, verdict: 'deny', conditionalRules: [] }
  // Enforced rules of the other action that match this pair, but not this plain connection.
  const other = decision.allow ? 'deny' : 'allow'
  const conditional = policy.document.rules
    .map((rule, index) => checkRule(rule, index, { from, to, port }))
    .filter(check => check.rule.action === other && check.rule.mode === 'enforce' && check.onlyTrafficMismatches)
    .filter(check => port === undefined || check.rule.ports === undefined || check.rule.ports.includes(port))
    .map(check => check.rule.name)
  const verdict = conditional.length > 0 ? 'some' : decision.allow ? 'allow' : 'deny'
  return { ...base, verdict, conditionalRules: conditional }
}
