/**
 * Policy files written inline by tests, and the check of the problems found in them (test/helpers/ holds no
 * tests: tap runs only *.test.ts).
 *
 * Tests pin problems to line:column, so these helpers write text in one fixed layout: every key of a rule on a
 * line of its own, in the order the object gives them, values written in YAML flow style (`[a, b]`,
 * `{methods: [GET]}`) unless wrapped in block(). List items and scalars are written verbatim: a string is the
 * YAML text itself (`'"80"'` is a quoted string, ANY is the quoted `'*'`).
 */
import type { Test } from 'tap'
import type { PolicyProblem } from '../../policy/errors'

/** The trust domain the policies are written for. */
export const TD = 'spiffe://plant.example'
/** The any-peer pattern as YAML needs it: quoted, since a bare * starts an alias. */
export const ANY = "'*'"

/** A file of these lines: line N is the N-th argument. */
export const yaml = (...lines: string[]): string => `${lines.join('\n')}\n`

type Scalar = string | number
type FlowMap = { readonly [key: string]: readonly Scalar[] }
type BlockValue = readonly Scalar[] | { readonly [key: string]: Value }
/** A field's value: a scalar, a flow list, a flow mapping of lists, or a block(). */
export type Value = Scalar | readonly Scalar[] | FlowMap | Block

class Block {
  constructor (readonly value: BlockValue) {}
}

/** The value in YAML block style: a list as `- item` lines, a mapping as `key: value` lines, one level deeper. */
export const block = (value: BlockValue): Block => new Block(value)

/** Keys written one a line, in this order; the ones a rule has are typed, any other is written all the same. */
export interface Fields { readonly [key: string]: Value | undefined }
export interface RuleFields extends Fields {
  readonly name?: Scalar
  readonly from?: readonly Scalar[] | Block
  readonly to?: readonly Scalar[] | Block
  readonly ports?: readonly Scalar[]
  readonly http?: FlowMap | Block
  readonly action?: string
  readonly mode?: string
}

function flow (value: Scalar | readonly Scalar[] | FlowMap): string {
  if (typeof value !== 'object') return String(value)
  if (isList(value)) return `[${value.map(flow).join(', ')}]`
  return `{${Object.entries(value).map(([key, item]) => `${key}: ${flow(item)}`).join(', ')}}`
}

const isList = (value: object): value is readonly Scalar[] => Array.isArray(value)

function entries (fields: Fields, indent: number): string[] {
  const pad = ' '.repeat(indent)
  return Object.entries(fields).flatMap(([key, value]) => {
    if (value === undefined) return []
    if (!(value instanceof Block)) return [`${pad}${key}: ${flow(value)}`]
    const inner = value.value
    return [`${pad}${key}:`, ...(isList(inner) ? inner.map(item => `${pad}  - ${flow(item)}`) : entries(inner, indent + 2))]
  })
}

/** The lines of one item of `rules:`: `  - ` before the first key, the others under it at four spaces. */
export function rule (fields: RuleFields): string[] {
  return entries(fields, 4).map((line, i) => i === 0 ? `  - ${line.slice(4)}` : line)
}

/** `version: 1`, then `rules:` with these rules (line 3 is the first rule's first key). */
export const policy = (...rules: readonly RuleFields[]): string => policyWith({}, ...rules)

/** `version: 1`, the top-level fields, then `rules:` with these rules. */
export const policyWith = (top: Fields, ...rules: readonly RuleFields[]): string =>
  yaml('version: 1', ...entries(top, 0), 'rules:', ...rules.flatMap(rule))

export interface ExpectedProblem {
  readonly at: string | undefined
  readonly path: string
  readonly message: RegExp
  readonly rule?: string
  /** expectProblems' `severity` when not given. */
  readonly severity?: 'error' | 'warning'
}

/**
 * Exactly these problems in this order: location, field, rule and severity (`severity` where an entry does not
 * say) compared exactly, the message by pattern.
 */
export function expectProblems (
  t: Test, problems: readonly PolicyProblem[], expected: readonly ExpectedProblem[], severity: 'error' | 'warning' = 'error'
): void {
  t.same(
    problems.map(p => ({ at: p.location ?? null, path: p.path, rule: p.rule ?? null, severity: p.severity })),
    expected.map(e => ({ at: e.at ?? null, path: e.path, rule: e.rule ?? null, severity: e.severity ?? severity })),
    'locations, fields, rules and severities, in order')
  expected.forEach((e, i) => { t.match(problems[i]?.message, e.message, `${e.at ?? '(no location)'} ${e.path}: message`) })
}
