import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { lintPolicyText } from '../../policy/lint'
import { parsePolicy } from '../../policy/document'
import { compilePolicy } from '../../policy/engine'
import { explainDecision } from '../../policy/explain'

// The README's policy example is what a new operator copies first: it must be valid, lint-clean, and decide
// the `policy check` shown next to it exactly as printed there.
const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8')
const section = readme.split(/^## The policy$/m)[1]?.split(/^## /m)[0] ?? ''
const example = /```yaml\n([\s\S]*?)```/.exec(section)?.[1] ?? ''
const shown = /```console\n([\s\S]*?)```/.exec(section)?.[1] ?? ''

void t.test('docs – the README\'s policy example is valid and lint-clean', async t => {
  t.not(example, '', 'the example is found')
  const result = lintPolicyText(example, 'policy.yaml')
  t.same(result.problems, [])
})

void t.test('docs – the README\'s `policy check` output matches what the example decides', async t => {
  const [, from, to, port] = /--from (\S+) --to (\S+) --port (\d+)/.exec(shown) ?? []
  const policy = compilePolicy(parsePolicy(example, 'policy.yaml'))
  const { decision, nearest } = explainDecision(policy, { from, to, port: Number(port) })
  t.match(shown, `${decision.allow ? 'ALLOW' : 'DENY '}  ${from} → ${to}`)
  t.match(shown, `  rule:    ${decision.rule}\n  reason:  ${decision.reason}\n`)
  t.match(shown, `  nearest: rule "${nearest?.rule.name ?? ''}" (${nearest?.rule.action ?? ''})  (${policy.ruleLocation(nearest?.rule.name ?? '') ?? ''}), which did not match:\n`)
  for (const mismatch of nearest?.mismatches ?? []) t.match(shown, `           - ${mismatch}\n`)
})
