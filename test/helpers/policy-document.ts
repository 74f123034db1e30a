/** Shared by the policy loader's tests (test/helpers/ holds no tests: tap runs only *.test.ts). */
import { parsePolicy } from '../../policy/document'
import { PolicyError } from '../../policy/errors'
import type { PolicyProblem } from '../../policy/errors'
import { thrown } from './errors'
import { TD, policy } from './policy-text'
import type { RuleFields } from './policy-text'

export const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')

export function policyError (fn: () => unknown): PolicyError {
  const err = thrown(fn)
  if (!(err instanceof PolicyError)) throw new Error(`expected a PolicyError, got ${err.name}: ${err.message}`)
  return err
}

export const problemsOf = (text: string): readonly PolicyProblem[] => policyError(() => parsePolicy(text, 'policy.yaml')).problems

/** The code of whatever fn throws (a bug may throw something other than a ChaperoneError). */
export function codeThrown (fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    return (err as { code?: string }).code ?? `${(err as Error).name}: ${(err as Error).message}`
  }
  return 'nothing thrown'
}

/** Rule fe-api, frontend to api, allowed; `between` are the keys written between its `to:` and its `action:`. */
export const feApiRule = (between: RuleFields = {}): RuleFields =>
  ({ name: 'fe-api', from: [`${TD}/frontend`], to: [`${TD}/api`], ...between, action: 'allow' })
export const feApi = policy(feApiRule())
