/**
 * The policy file: YAML (so JSON too) checked by policy/schema.json, then by the rules a schema cannot say
 * (pattern syntax, unique rule names). Every problem names its file:line:column, the rule and the field.
 * A loaded policy is frozen and carries a hash of its meaning (defaults filled in, keys sorted), so the same
 * policy reports the same hash on every device, however it is formatted.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { ConfigError, compileSchema, deepFreeze, parseConfigText, readConfigFile, schemaProblems } from '../config/load'
import type { ConfigSource, Locate } from '../config/load'
import { packageFile } from '../config/package-files'
import { PolicyError } from './errors'
import type { PolicyProblem } from './errors'
import { parseIdPattern } from './id-pattern'
import { parsePathPattern } from './http-path'

export interface PolicyRule {
  readonly name: string
  readonly description?: string
  readonly from: readonly string[]
  readonly to: readonly string[]
  readonly ports?: readonly number[]
  readonly http?: { readonly methods?: readonly string[], readonly paths?: readonly string[] }
  readonly action: 'allow' | 'deny'
  readonly mode: 'enforce' | 'dry-run'
}

export interface PolicyDocument {
  readonly version: 1
  readonly defaultAction: 'allow' | 'deny'
  readonly tcpPorts?: readonly number[]
  readonly rules: readonly PolicyRule[]
}

/** A valid policy, frozen, with where it came from. */
export interface LoadedPolicy {
  readonly document: PolicyDocument
  /** The file name, or a label for a policy given as a value. */
  readonly source: string
  /** `sha256:` and 16 hex digits of the policy's meaning. */
  readonly hash: string
  /** file:line:column of a field, by JSON pointer (`/rules/0`), when the policy came from text. */
  readonly locate: Locate
}

const loadedPolicies = new WeakSet<object>()

/** True for a LoadedPolicy made here (already checked), as opposed to a look-alike value. */
export function isLoadedPolicy (value: unknown): value is LoadedPolicy {
  return typeof value === 'object' && value !== null && loadedPolicies.has(value)
}

const validate = compileSchema<PolicyDocument>(JSON.parse(readFileSync(packageFile('policy/schema.json'), 'utf8')) as object)

/** Reads and checks a policy file; throws PolicyError (`ERR_POLICY_INVALID`) listing every problem. */
export function loadPolicy (file: string): LoadedPolicy {
  return fromSource(() => readConfigFile(file), file)
}

/** Checks a policy given as YAML or JSON text. */
export function parsePolicy (text: string, name = '<policy>'): LoadedPolicy {
  return fromSource(() => parseConfigText(text, name), name)
}

/** Checks a policy given as a value (it is copied, not changed). */
export function policyFromValue (value: unknown, name = '<policy>'): LoadedPolicy {
  return fromSource(() => ({ name, value: plainCopy(value, name), locate: () => undefined }), name)
}

function plainCopy (value: unknown, name: string): unknown {
  try {
    return structuredClone(value)
  } catch (err) {
    throw new ConfigError(name, [{ path: '', message: `a policy is plain data (objects, arrays, strings, numbers): ${(err as Error).message}` }])
  }
}

function fromSource (read: () => ConfigSource, name: string): LoadedPolicy {
  const { loaded, problems } = checkPolicySource(read, name)
  if (loaded === undefined) throw new PolicyError(name, problems)
  return loaded
}

/** Reads and checks a policy, returning its problems (errors only) instead of throwing: what lint builds on. */
export function checkPolicySource (read: () => ConfigSource, name: string): { loaded?: LoadedPolicy, source?: ConfigSource, problems: PolicyProblem[] } {
  let source: ConfigSource
  try {
    source = read()
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    return { problems: err.problems.map(p => ({ severity: 'error', ...p })) }
  }
  const semantic = semanticProblems(source.value, source.locate)
  const covered = new Set(semantic.map(p => p.path))
  const problems = schemaProblems(validate, source.value, source.locate)
    .filter(p => !(p.keyword === 'pattern' && covered.has(p.path)))
    .map((p): PolicyProblem => ({ severity: 'error', path: p.path, location: p.location, message: p.keyword === 'pattern' ? patternMessage(p.path) ?? p.message : p.message }))
    .concat(semantic)
    .map(p => withRuleName(p, source.value))
    .sort(byLocation)
  if (problems.length > 0) return { source, problems }
  const document = deepFreeze(source.value as PolicyDocument)
  const loaded = Object.freeze({ document, source: name, hash: policyHash(document), locate: source.locate })
  loadedPolicies.add(loaded)
  return { source, problems, loaded }
}

/** The checks a JSON Schema cannot express; tolerant of a document the schema rejects, so all problems show at once. */
function semanticProblems (value: unknown, locate: Locate): PolicyProblem[] {
  const problems: PolicyProblem[] = []
  const add = (path: string, message: string): void => { problems.push({ severity: 'error', path, message, location: locate(path) }) }
  const firstByName = new Map<string, number>()
  arrayAt(value, 'rules').forEach((rule, i) => {
    const name = fieldOf(rule, 'name')
    if (typeof name === 'string') {
      const first = firstByName.get(name)
      if (first === undefined) firstByName.set(name, i)
      else add(`/rules/${i}/name`, `duplicate rule name (rule ${first + 1} at ${locate(`/rules/${first}`) ?? 'an earlier position'} has it too)`)
    }
    for (const side of ['from', 'to']) {
      arrayAt(rule, side).forEach((pattern, j) => {
        if (typeof pattern !== 'string') return
        const parsed = parseIdPattern(pattern)
        if (typeof parsed === 'string') add(`/rules/${i}/${side}/${j}`, `bad pattern ${JSON.stringify(pattern)}: ${parsed}`)
      })
    }
    arrayAt(fieldOf(rule, 'http'), 'paths').forEach((pattern, j) => {
      if (typeof pattern !== 'string') return
      const parsed = parsePathPattern(pattern)
      if (typeof parsed === 'string') add(`/rules/${i}/http/paths/${j}`, `bad path ${JSON.stringify(pattern)}: ${parsed}`)
    })
  })
  return problems
}

function fieldOf (value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>)[key] : undefined
}

function arrayAt (value: unknown, key: string): unknown[] {
  const field = fieldOf(value, key)
  return Array.isArray(field) ? field : []
}

/** Readable messages for the schema's string patterns that the semantic checks do not cover. */
function patternMessage (path: string): string | undefined {
  if (/^\/rules\/\d+\/name$/.test(path)) return 'a rule name is letters, digits, ".", "_" and "-", starting with a letter or digit'
  if (/^\/rules\/\d+\/http\/methods\/\d+$/.test(path)) return 'an HTTP method is an uppercase token, like GET or POST'
  return undefined
}

function withRuleName (problem: PolicyProblem, value: unknown): PolicyProblem {
  const index = /^\/rules\/(\d+)(\/|$)/.exec(problem.path)?.[1]
  if (index === undefined) return problem
  const name = fieldOf(arrayAt(value, 'rules')[Number(index)], 'name')
  return { ...problem, rule: typeof name === 'string' ? name : `#${Number(index) + 1}` }
}

/** Orders problems by line and column (those without a position last, in their order). */
export function byLocation (a: PolicyProblem, b: PolicyProblem): number {
  const position = (p: PolicyProblem): number[] => {
    const match = /:(\d+):(\d+)$/.exec(p.location ?? '')
    return match === null ? [Infinity, Infinity] : [Number(match[1]), Number(match[2])]
  }
  const [pa, pb] = [position(a), position(b)]
  return pa[0] - pb[0] || pa[1] - pb[1]
}

/** The hash of a policy's meaning: its JSON with keys sorted. */
export function policyHash (document: PolicyDocument): string {
  return `sha256:${createHash('sha256').update(canonicalJson(document)).digest('hex').slice(0, 16)}`
}

function canonicalJson (value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (typeof value === 'object' && value !== null) {
    const entries = value as Record<string, unknown>
    return `{${Object.keys(value).filter(key => entries[key] !== undefined).sort().map(key => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`).join(',')}}`
  }
  return JSON.stringify(value)
}
