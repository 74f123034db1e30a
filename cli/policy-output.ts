/** The text forms of `chaperone policy lint|check|matrix`, written to be read by an operator at a terminal. */
import type { CompiledPolicy } from '../policy/engine'
import { formatProblem } from '../policy/errors'
import type { Explanation, PlainRequest } from '../policy/explain'
import type { LintResult } from '../policy/lint'
import type { MatrixCell } from '../policy/matrix'

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`

export function renderLint (result: LintResult): string {
  const lines = result.problems.map(p => formatProblem(p, result.source))
  lines.push(result.problems.length === 0
    ? `${result.source}: no problems (${result.hash ?? ''})`
    : `${result.source}: ${plural(result.errors, 'error')}, ${plural(result.warnings, 'warning')}`)
  return `${lines.join('\n')}\n`
}

function describeRequest (request: PlainRequest): string {
  const port = request.port === undefined ? 'no port' : `port ${request.port}`
  const traffic = request.http === undefined ? 'plain TCP' : `${request.http.method} ${request.http.path}`
  return `${request.from} → ${request.to}  (${port}, ${traffic})`
}

export function renderCheck (policy: CompiledPolicy, request: PlainRequest, { decision, nearest }: Explanation): string {
  const at = (rule: string): string => {
    const location = policy.ruleLocation(rule)
    return location === undefined ? '' : `  (${location})`
  }
  const lines = [
    `${decision.allow ? 'ALLOW' : 'DENY '}  ${describeRequest(request)}`,
    `  rule:    ${decision.rule}${at(decision.rule)}`,
    `  reason:  ${decision.reason}`
  ]
  if (decision.wouldBe !== undefined) {
    lines.push(`  dry-run: rule ${JSON.stringify(decision.wouldBe.rule)} would ${decision.wouldBe.allow ? 'ALLOW' : 'DENY'} it (mode: dry-run, not enforced)${at(decision.wouldBe.rule)}`)
  }
  if (nearest !== undefined && nearest.mismatches.length > 0) {
    lines.push(`  nearest: rule ${JSON.stringify(nearest.rule.name)} (${nearest.rule.action})${at(nearest.rule.name)}, which did not match:`)
    for (const mismatch of nearest.mismatches) lines.push(`           - ${mismatch}`)
  }
  lines.push(`  policy:  ${policy.source} (${policy.hash})`)
  return `${lines.join('\n')}\n`
}

/** Rows are sources, columns destinations, numbered; `~` marks a pair a dry-run rule would decide. */
export function renderMatrix (policy: CompiledPolicy, ids: readonly string[], cells: readonly MatrixCell[][], port: number | undefined): string {
  const label = (i: number): string => `[${i + 1}]`
  const idWidth = Math.max(...ids.map((id, i) => `${label(i)} ${id}`.length))
  const cellText = (cell: MatrixCell): string => `${cell.verdict}${cell.dryRun ? '~' : ''}`
  const width = 7
  const lines = [
    `${policy.source} (${policy.hash}), ${port === undefined ? 'plain TCP, no port' : `plain TCP to port ${port}`}: rows connect to columns`,
    '',
    `${'from \\ to'.padEnd(idWidth)}  ${ids.map((_, i) => label(i).padEnd(width)).join('')}`.trimEnd()
  ]
  cells.forEach((row, i) => { lines.push(`${`${label(i)} ${ids[i]}`.padEnd(idWidth)}  ${row.map(cell => cellText(cell).padEnd(width)).join('')}`.trimEnd()) })
  const notes = cells.flat().filter(cell => cell.verdict === 'some' || cell.dryRun)
  if (notes.length > 0) lines.push('')
  for (const cell of notes) {
    const pair = `${label(ids.indexOf(cell.from))} → ${label(ids.indexOf(cell.to))}`
    if (cell.verdict === 'some') lines.push(`${pair}: some: depends on port or HTTP request, see rule${cell.conditionalRules.length === 1 ? '' : 's'} ${cell.conditionalRules.join(', ')} (decided by ${cell.rule} otherwise)`)
    if (cell.wouldBe !== undefined) lines.push(`${pair}: ~: dry-run rule ${JSON.stringify(cell.wouldBe.rule)} would ${cell.wouldBe.allow ? 'ALLOW' : 'DENY'} (not enforced)`)
  }
  return `${lines.join('\n')}\n`
}
