/**
 * `chaperone policy lint`: every error that makes a policy unusable (document.ts), plus warnings for rules that
 * are valid but cannot do what their author meant: patterns that can never match, HTTP conditions on ports that
 * do not speak HTTP, allow rules under a default allow, and rules shadowed by another rule. The caller may add
 * warnings that need more than the policy (served-ports.ts: rules a given sidecar's listeners can never meet).
 */
import { readConfigFile, parseConfigText } from '../config/load'
import type { ConfigSource } from '../config/load'
import { byLocation, checkPolicySource } from './document'
import type { LoadedPolicy, PolicyRule } from './document'
import type { PolicyProblem } from './errors'
import { idPatternCovers, namesOnlyTrustDomain, parseIdPattern } from './id-pattern'
import type { IdPattern } from './id-pattern'
import { parsePathPattern, pathPatternCovers } from './http-path'
import type { PathPattern } from './http-path'

export interface LintResult {
  readonly source: string
  readonly problems: readonly PolicyProblem[]
  readonly errors: number
  readonly warnings: number
  /** The policy's hash, when it has no errors. */
  readonly hash?: string
}

/** Ports whose protocol is not HTTP, so HTTP conditions on them never match (the policy's tcpPorts add more). */
const TCP_ONLY_PORTS: ReadonlyMap<number, string> = new Map([
  [22, 'SSH'], [25, 'SMTP'], [53, 'DNS'], [102, 'S7comm'], [502, 'Modbus/TCP'], [1433, 'SQL Server'], [1883, 'MQTT'],
  [2404, 'IEC 60870-5-104'], [3306, 'MySQL'], [4840, 'OPC UA'], [5432, 'PostgreSQL'], [5672, 'AMQP'], [6379, 'Redis'],
  [8883, 'MQTT over TLS'], [9092, 'Kafka'], [20000, 'DNP3'], [27017, 'MongoDB'], [44818, 'EtherNet/IP']
])

/** Lints a policy file; `more` adds warnings of a valid policy (servedPortWarnings for a sidecar's listeners). */
export function lintPolicyFile (file: string, more?: (loaded: LoadedPolicy) => PolicyProblem[]): LintResult {
  return lint(() => readConfigFile(file), file, more)
}

export function lintPolicyText (text: string, name = '<policy>'): LintResult {
  return lint(() => parseConfigText(text, name), name)
}

function lint (read: () => ConfigSource, name: string, more: (loaded: LoadedPolicy) => PolicyProblem[] = () => []): LintResult {
  const { loaded, problems } = checkPolicySource(read, name)
  const all = loaded === undefined ? problems : [...policyWarnings(loaded), ...more(loaded)].sort(byLocation)
  const errors = all.filter(p => p.severity === 'error').length
  return { source: name, problems: all, errors, warnings: all.length - errors, hash: loaded?.hash }
}

interface ParsedRule {
  readonly rule: PolicyRule
  readonly index: number
  readonly from: readonly IdPattern[]
  readonly to: readonly IdPattern[]
  readonly paths?: readonly PathPattern[]
}

/** The warnings of a valid policy. */
export function policyWarnings (loaded: Pick<LoadedPolicy, 'document' | 'locate'>): PolicyProblem[] {
  const { document, locate } = loaded
  const warnings: PolicyProblem[] = []
  const warn = (index: number, path: string, message: string): void => {
    const pointer = `/rules/${index}${path}`
    warnings.push({ severity: 'warning', path: pointer, message, location: locate(pointer), rule: document.rules[index].name })
  }
  const tcpPorts = new Map(TCP_ONLY_PORTS)
  for (const port of document.tcpPorts ?? []) tcpPorts.set(port, tcpPorts.get(port) ?? 'listed in tcpPorts')
  const live: ParsedRule[] = []
  document.rules.forEach((rule, index) => {
    const parsed = parseRule(rule, index)
    // Every check runs (no short-circuit), so each dead part of a rule gets its own warning.
    const canMatch = [sideCanMatch(parsed, 'from', warn), sideCanMatch(parsed, 'to', warn), httpCanMatch(rule, index, tcpPorts, warn)].every(Boolean)
    if (rule.action === 'allow' && document.defaultAction === 'allow') {
      warn(index, '/action', 'has no effect: the default action is already allow, and deny rules win over allow rules')
    }
    if (canMatch) live.push(parsed)
  })
  // In the engine's order, so the rule named is the one that really decides instead (a deny before an allow).
  const byPrecedence = [...live].sort((a, b) => precedes(a.rule, a.index, b.rule, b.index) ? -1 : 1)
  for (const rule of live) {
    const shadow = byPrecedence.find(other => other !== rule && precedes(other.rule, other.index, rule.rule, rule.index) &&
      (other.rule.mode === 'enforce' || rule.rule.mode === 'dry-run') && covers(other, rule))
    if (shadow === undefined) continue
    const where = `rule ${JSON.stringify(shadow.rule.name)}${lineOf(locate(`/rules/${shadow.index}`))}`
    warn(rule.index, '', shadow.rule.action !== rule.rule.action
      ? `can never allow: ${where} denies everything this rule matches, and deny rules win`
      : `is shadowed: ${where} matches everything this rule matches, so this rule never decides`)
  }
  return warnings
}

function parseRule (rule: PolicyRule, index: number): ParsedRule {
  const ids = (texts: readonly string[]): IdPattern[] => texts.map(text => parseIdPattern(text) as IdPattern)
  return { rule, index, from: ids(rule.from), to: ids(rule.to), paths: rule.http?.paths?.map(text => parsePathPattern(text) as PathPattern) }
}

type Warn = (index: number, path: string, message: string) => void

function sideCanMatch (parsed: ParsedRule, side: 'from' | 'to', warn: Warn): boolean {
  const dead = parsed[side].map(namesOnlyTrustDomain)
  const explain = 'names a trust domain, not a workload: no peer carries that ID (spiffe://<trust domain>/** is every workload)'
  if (dead.every(Boolean)) {
    warn(parsed.index, `/${side}`, `can never match: every pattern ${explain}`)
    return false
  }
  dead.forEach((isDead, j) => { if (isDead) warn(parsed.index, `/${side}/${j}`, `never matches: ${JSON.stringify(parsed.rule[side][j])} ${explain}`) })
  return true
}

function httpCanMatch (rule: PolicyRule, index: number, tcpPorts: ReadonlyMap<number, string>, warn: Warn): boolean {
  if (rule.http === undefined || rule.ports === undefined) return true
  const tcpOnly = rule.ports.filter(port => tcpPorts.has(port))
  const named = tcpOnly.map(port => `${port} (${tcpPorts.get(port) ?? ''})`).join(', ')
  if (tcpOnly.length === rule.ports.length) {
    warn(index, '/http', `can never match: HTTP conditions on TCP-only port${tcpOnly.length > 1 ? 's' : ''} ${named}`)
    return false
  }
  if (tcpOnly.length > 0) warn(index, '/http', `HTTP conditions never match on TCP-only port${tcpOnly.length > 1 ? 's' : ''} ${named}`)
  return true
}

/** Whether `a` comes before `b` in the engine's precedence (enforced deny, dry-run deny, enforced allow, dry-run allow; then file order). */
function precedes (a: PolicyRule, aIndex: number, b: PolicyRule, bIndex: number): boolean {
  const rank = (rule: PolicyRule): number => (rule.action === 'deny' ? 0 : 2) + (rule.mode === 'dry-run' ? 1 : 0)
  return rank(a) < rank(b) || (rank(a) === rank(b) && aIndex < bIndex)
}

/** Whether `outer` matches every connection and request `inner` matches (single patterns compared; conservative). */
function covers (outer: ParsedRule, inner: ParsedRule): boolean {
  const ids = (o: readonly IdPattern[], i: readonly IdPattern[]): boolean => i.every(p => o.some(q => idPatternCovers(q, p)))
  if (!ids(outer.from, inner.from) || !ids(outer.to, inner.to)) return false
  const outerPorts = outer.rule.ports
  const innerPorts = inner.rule.ports
  if (outerPorts !== undefined && (innerPorts === undefined || !innerPorts.every(port => outerPorts.includes(port)))) return false
  const outerHttp = outer.rule.http
  if (outerHttp === undefined) return true
  const innerHttp = inner.rule.http
  if (innerHttp === undefined) return false
  const outerMethods = outerHttp.methods
  if (outerMethods !== undefined && (innerHttp.methods === undefined || !innerHttp.methods.every(m => outerMethods.includes(m)))) return false
  const outerPaths = outer.paths
  if (outerPaths === undefined) return true
  return inner.paths !== undefined && inner.paths.every(p => outerPaths.some(q => pathPatternCovers(q, p)))
}

function lineOf (location: string | undefined): string {
  const line = /:(\d+):\d+$/.exec(location ?? '')?.[1]
  return line === undefined ? '' : ` (line ${line})`
}
