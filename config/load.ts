/**
 * Configuration files (YAML, so JSON too) checked against a JSON Schema compiled once by ajv, with defaults taken
 * from the schema; an error names each offending field with its file:line:column. The result is frozen.
 * Shared by the agent, the policy file and the sidecar so every file Chaperone reads reports problems alike.
 */
import { readFileSync } from 'node:fs'
import Ajv from 'ajv'
import type { ErrorObject, ValidateFunction } from 'ajv'
import addFormats from 'ajv-formats'
import { LineCounter, isMap, isScalar, parseDocument } from 'yaml'
import type { Document } from 'yaml'
import { ChaperoneError } from '../spiffe/errors'
import { DURATION_FORMS, DURATION_SCHEMA } from './duration'

export { DURATION_SCHEMA, durationSeconds, parseDuration } from './duration'

export interface ConfigProblem {
  /** JSON pointer of the field, e.g. `/ca/keyType` ('' for the whole document). */
  readonly path: string
  readonly message: string
  /** Where the field is, when it came from a file. */
  readonly location?: string
}

/** A JSON pointer as a person reads it: `/ca/keyType` → `ca.keyType`, `/rules/0/from` → `rules[0].from`. */
export function fieldName (pointer: string): string {
  return pointer.split('/').slice(1)
    .map(key => key.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((key, i) => /^\d+$/.test(key) ? `[${key}]` : `${i === 0 ? '' : '.'}${key}`)
    .join('')
}

/** A configuration that cannot be used; `problems` lists every problem found, the message all of them. */
export class ConfigError extends ChaperoneError<'ERR_CONFIG_INVALID'> {
  readonly problems: readonly ConfigProblem[]
  constructor (source: string, problems: ConfigProblem[]) {
    const lines = problems.map(p => `  ${p.location ?? source}: ${p.path === '' ? '' : `${fieldName(p.path)}: `}${p.message}`)
    super('ERR_CONFIG_INVALID', `invalid configuration (${source}):\n${lines.join('\n')}`)
    this.problems = problems
  }
}

// verbose: an error carries its schema, so a failed duration (an anyOf) is told apart from other anyOfs.
const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, verbose: true })
addFormats(ajv)

/** Compiles a schema once (at module load of its user). */
export function compileSchema<T> (schema: object): ValidateFunction<T> {
  return ajv.compile<T>(schema)
}

/** A parsed file: the plain value and what is needed to point at its lines. */
export interface ConfigSource {
  readonly name: string
  readonly value: unknown
  /** Position of a field's value (or, with `key`, of its key: where an unknown field is written). */
  readonly locate: Locate
}

export type Locate = (path: string, key?: boolean) => string | undefined

/** Reads a YAML/JSON file; syntax errors are ConfigErrors with the position. Returns undefined locations for an absent file. */
export function readConfigFile (file: string): ConfigSource {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError(file, [{ path: '', message: `cannot read the file: ${(err as Error).message}` }])
  }
  return parseConfigText(text, file)
}

export function parseConfigText (text: string, name: string): ConfigSource {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true })
  const position = (offset: number): string => {
    const { line, col } = lineCounter.linePos(offset)
    return `${name}:${line}:${col}`
  }
  if (doc.errors.length > 0) {
    throw new ConfigError(name, doc.errors.map(err => ({ path: '', location: position(err.pos[0]), message: err.message.split('\n')[0] })))
  }
  let value: unknown
  try {
    value = doc.toJS()
  } catch (err) {
    // Aliases are resolved here: an undefined anchor, or too many aliases (a "billion laughs" document).
    throw new ConfigError(name, [{ path: '', message: `cannot read the YAML: ${(err as Error).message}` }])
  }
  return { name, value, locate: (path, key) => locateIn(doc, path, key === true, position) }
}

function locateIn (doc: Document, path: string, atKey: boolean, position: (offset: number) => string): string | undefined {
  const keys = path.split('/').slice(1).map(key => key.replace(/~1/g, '/').replace(/~0/g, '~'))
  const nodeAt = (n: number): unknown => doc.getIn(keys.slice(0, n).map(key => /^\d+$/.test(key) ? Number(key) : key), true)
  if (atKey && keys.length > 0) {
    const parent = nodeAt(keys.length - 1)
    const pair = isMap(parent) ? parent.items.find(item => isScalar(item.key) && String(item.key.value) === keys[keys.length - 1]) : undefined
    const keyStart = isScalar(pair?.key) ? pair.key.range?.[0] : undefined
    if (keyStart !== undefined) return position(keyStart)
  }
  // The field itself, or the nearest parent that exists (a missing required field points at its parent).
  for (let n = keys.length; n >= 0; n--) {
    const start = (nodeAt(n) as { range?: [number, number, number] | null } | undefined)?.range?.[0]
    if (start !== undefined) return position(start)
  }
  return undefined
}

/**
 * Validates `value` (mutated in place: defaults are filled in) and returns it deeply frozen.
 * `locate` maps a field to its file position; fields it cannot place are reported under `sourceName`.
 */
export function validateConfig<T> (validate: ValidateFunction<T>, value: unknown, sourceName: string, locate: Locate = () => undefined): Readonly<T> {
  const problems = schemaProblems(validate, value, locate)
  if (problems.length > 0) throw new ConfigError(sourceName, problems)
  return deepFreeze(value as T)
}

/** A schema problem, with the ajv keyword that failed (`pattern`, `additionalProperties`, …). */
export interface SchemaProblem extends ConfigProblem { readonly keyword: string }

/** Validates `value` (filling in defaults) and returns every problem, without throwing. */
export function schemaProblems<T> (validate: ValidateFunction<T>, value: unknown, locate: Locate = () => undefined): SchemaProblem[] {
  if (validate(value)) return []
  const errors = validate.errors ?? []
  // An anyOf that failed is one problem: the errors of its branches are dropped (they name regexes and types).
  const anyOfs = errors.filter(err => err.keyword === 'anyOf').map(err => `${err.schemaPath}/`)
  return errors.filter(err => !anyOfs.some(prefix => err.schemaPath.startsWith(prefix))).map(err => problemOf(err, value, locate))
}

function problemOf (err: ErrorObject, value: unknown, locate: Locate): SchemaProblem {
  const params = err.params as { additionalProperty?: string, allowedValues?: unknown[], allowedValue?: unknown, missingProperty?: string, type?: string }
  let message = err.message ?? 'is invalid'
  let path = err.instancePath
  if (params.additionalProperty !== undefined) {
    path = `${path}/${params.additionalProperty.replace(/~/g, '~0').replace(/\//g, '~1')}`
    message = 'unknown field'
  } else if (params.missingProperty !== undefined) {
    message = `missing required field "${params.missingProperty}"`
  } else if (params.allowedValues !== undefined) {
    message = `must be one of ${params.allowedValues.map(v => JSON.stringify(v)).join(', ')}`
  } else if (err.keyword === 'const') {
    message = `must be ${JSON.stringify(params.allowedValue)}`
  } else if (err.keyword === 'anyOf' && (err.parentSchema as { anyOf?: unknown } | undefined)?.anyOf === DURATION_SCHEMA.anyOf) {
    message = `must be a duration: ${DURATION_FORMS}, not ${JSON.stringify(err.data)}`
  } else if (path === '' && err.keyword === 'type' && params.type === 'object') {
    message = value === null || value === undefined ? 'the file is empty: expected a mapping of fields (name: value)' : 'must be a mapping of fields (name: value), not a list or a single value'
  }
  return { path, message, keyword: err.keyword, location: locate(path, params.additionalProperty !== undefined) }
}

export function deepFreeze<T> (value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const child of Object.values(value)) deepFreeze(child)
  }
  return value
}
