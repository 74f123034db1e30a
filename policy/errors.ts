/** Policy problems: what lint reports and what makes a policy unusable. */
import { ChaperoneError } from '../spiffe/errors'
import { fieldName } from '../config/load'

export interface PolicyProblem {
  readonly severity: 'error' | 'warning'
  /** JSON pointer of the field (`/rules/2/from/0`); '' for the whole document. */
  readonly path: string
  readonly message: string
  /** file:line:column, when the policy came from text. */
  readonly location?: string
  /** The rule's name (or `#N` for an unnamed one), when the problem is in a rule. */
  readonly rule?: string
}

/** `file:3:7: error: rule "api-read": from[0]: bad pattern …` */
export function formatProblem (problem: PolicyProblem, source: string): string {
  const field = fieldName(problem.path.replace(/^\/rules\/\d+/, ''))
  const rule = problem.rule === undefined ? '' : `rule ${problem.rule.startsWith('#') ? problem.rule : JSON.stringify(problem.rule)}: `
  return `${problem.location ?? source}: ${problem.severity}: ${rule}${field === '' ? '' : `${field}: `}${problem.message}`
}

/** A policy that cannot be used; `problems` lists every error found. */
export class PolicyError extends ChaperoneError<'ERR_POLICY_INVALID'> {
  readonly problems: readonly PolicyProblem[]
  constructor (source: string, problems: readonly PolicyProblem[]) {
    super('ERR_POLICY_INVALID', `invalid policy (${source}):\n${problems.map(p => `  ${formatProblem(p, source)}`).join('\n')}`)
    this.problems = problems
  }
}

/** A decision asked about something that is not a valid request (an invalid SPIFFE ID, port or HTTP request). */
export class PolicyRequestError extends ChaperoneError<'ERR_POLICY_REQUEST_INVALID'> {
  constructor (message: string) {
    super('ERR_POLICY_REQUEST_INVALID', message)
  }
}
