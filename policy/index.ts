/**
 * policy/ — the "who can talk to whom" file operators edit: its JSON Schema (schema.json) and checks, compilation
 * into a decision engine (default deny, deny beats allow, dry-run reported but not enforced), hot reload, and the
 * answers behind `chaperone policy lint|check|matrix`. Imports spiffe/ and config/ only.
 */
export { loadPolicy, parsePolicy, policyFromValue, policyHash } from './document'
export type { LoadedPolicy, PolicyDocument, PolicyRule } from './document'
export { compilePolicy, CompiledPolicy, DEFAULT_RULE } from './engine'
export type { Decision, PolicyRequest, Verdict } from './engine'
export { PolicyError, PolicyRequestError, formatProblem } from './errors'
export type { PolicyProblem } from './errors'
export { normalizeRequestPath } from './http-path'
export { explainDecision } from './explain'
export type { Explanation, RuleCheck } from './explain'
export { lintPolicyFile, lintPolicyText } from './lint'
export type { LintResult } from './lint'
export { policyMatrix } from './matrix'
export type { MatrixCell } from './matrix'
export { servedPortWarnings } from './served-ports'
export type { ServedPorts } from './served-ports'
export { PolicyWatcher } from './watch'
export type { PolicyWatcherOptions, ReloadResult, ReloadTrigger } from './watch'
