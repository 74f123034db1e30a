/**
 * Selectors: the `type:value` facts a workload attestor reports about a process (`unix:uid:1001`) and that a
 * registration entry requires. Only the forms our attestors produce are accepted, each in the one canonical
 * spelling the attestor emits, because entries match workloads by exact string equality.
 */
import { posix } from 'node:path'
import { EntryError } from './errors'

export interface Selector {
  readonly type: string
  readonly value: string
}

/** Returns what is wrong with a selector's argument, or undefined when it is fine. */
type ArgumentCheck = (arg: string) => string | undefined

const MAX_ID = 2 ** 32 - 1

const decimalId: ArgumentCheck = arg =>
  /^(0|[1-9][0-9]*)$/.test(arg) && Number(arg) <= MAX_ID
    ? undefined
    : `must be a decimal number from 0 to ${MAX_ID}, without sign or leading zeros`

const accountName: ArgumentCheck = arg =>
  /^[^\s:]+$/.test(arg) ? undefined : 'must be a non-empty name without spaces or ":"'

const lowerHex = (digits: number): ArgumentCheck => arg =>
  new RegExp(`^[0-9a-f]{${digits}}$`).test(arg) ? undefined : `must be ${digits} lowercase hexadecimal digits`

const notEmpty: ArgumentCheck = arg => arg.length > 0 ? undefined : 'must not be empty'

/** The attestor reports /proc/PID/exe, which the kernel resolves, so only a normalised absolute path can match. */
const absolutePath: ArgumentCheck = arg =>
  arg.startsWith('/') && posix.normalize(arg) === arg && (arg === '/' || !arg.endsWith('/'))
    ? undefined
    : 'must be an absolute, normalised path (no ".", "..", "//" or trailing "/")'

const separated = (separator: string, part: string): ArgumentCheck => arg =>
  arg.indexOf(separator) > 0 ? undefined : `must be ${part}`

/** Every selector our attestors produce (spiffe-facts.md, "What SPIRE does"), keyed by `type:key`. */
const KNOWN_SELECTORS: ReadonlyMap<string, { readonly usage: string, readonly check: ArgumentCheck }> = new Map([
  ['unix:uid', { usage: 'unix:uid:N', check: decimalId }],
  ['unix:gid', { usage: 'unix:gid:N', check: decimalId }],
  ['unix:user', { usage: 'unix:user:NAME', check: accountName }],
  ['unix:group', { usage: 'unix:group:NAME', check: accountName }],
  ['unix:supplementary_gid', { usage: 'unix:supplementary_gid:N', check: decimalId }],
  ['unix:supplementary_group', { usage: 'unix:supplementary_group:NAME', check: accountName }],
  ['unix:path', { usage: 'unix:path:/ABSOLUTE/PATH', check: absolutePath }],
  ['unix:sha256', { usage: 'unix:sha256:HEX', check: lowerHex(64) }],
  ['docker:label', { usage: 'docker:label:KEY:VALUE', check: separated(':', 'KEY:VALUE with a non-empty KEY') }],
  ['docker:image_id', { usage: 'docker:image_id:VALUE', check: notEmpty }],
  ['docker:env', { usage: 'docker:env:VAR=VALUE', check: separated('=', 'VAR=VALUE with a non-empty VAR') }],
  ['docker:container_id', { usage: 'docker:container_id:HEX', check: lowerHex(64) }]
])

const SUPPORTED = `supported: ${[...KNOWN_SELECTORS.values()].map(known => known.usage).join(', ')}`
const SUPPORTED_TYPES = new Set([...KNOWN_SELECTORS.keys()].map(key => key.slice(0, key.indexOf(':'))))

/** Parses `type:value` (e.g. `unix:uid:1001`); throws EntryError `ERR_SELECTOR_INVALID` naming the problem. */
export function parseSelector (text: string): Selector {
  if (typeof text !== 'string') throw invalid('a selector must be a string like "unix:uid:1001"')
  // Control characters can never come from an attestor and would only hide the selector's real text in logs.
  if (/\p{Cc}/u.test(text)) throw invalidSelector(text, 'control characters are not allowed')
  const typeEnd = text.indexOf(':')
  const type = typeEnd === -1 ? text : text.slice(0, typeEnd)
  if (!SUPPORTED_TYPES.has(type)) throw invalidSelector(text, `unknown selector type ${JSON.stringify(type)}; ${SUPPORTED}`)
  const value = typeEnd === -1 ? '' : text.slice(typeEnd + 1)
  const keyEnd = value.indexOf(':')
  const key = keyEnd === -1 ? value : value.slice(0, keyEnd)
  const known = KNOWN_SELECTORS.get(`${type}:${key}`)
  if (known === undefined) throw invalidSelector(text, `unknown ${type} selector ${JSON.stringify(key)}; ${SUPPORTED}`)
  const problem = keyEnd === -1 ? 'is missing its value' : known.check(value.slice(keyEnd + 1))
  if (problem !== undefined) throw invalidSelector(text, `${type}:${key} ${problem} (${known.usage})`)
  return Object.freeze({ type, value })
}

/** The selector's text form, `type:value`: what parseSelector reads. */
export function formatSelector (selector: Selector): string {
  return `${selector.type}:${selector.value}`
}

/**
 * Validates selectors given as text or objects, by our attestors' forms (`attested`) or by SPIRE's rule (`spire`:
 * any type without ":", any value, neither empty); returns them de-duplicated and sorted by type, then value.
 */
export function normalizeSelectors (selectors: ReadonlyArray<string | Selector>, syntax: 'attested' | 'spire' = 'attested'): Selector[] {
  const parse = syntax === 'spire' ? parseAnySelector : parseSelector
  const byText = new Map<string, Selector>()
  for (const given of selectors) {
    const selector = typeof given === 'object' && given !== null ? parse(formatSelector(selectorObject(given))) : parse(given)
    byText.set(formatSelector(selector), selector)
  }
  return [...byText.values()].sort(compareSelectors)
}

function selectorObject (selector: Selector): Selector {
  if (typeof selector.type !== 'string' || typeof selector.value !== 'string') {
    throw invalid('a selector object must have string "type" and "value" fields')
  }
  // Its text is parsed again: a ":" in the type would move the split.
  if (selector.type.includes(':')) throw invalidSelector(formatSelector(selector), 'the type must not contain ":"')
  return selector
}

/** SPIRE's rule (its server's api/selector.go): `type:value`, split at the first ":", neither part empty. */
function parseAnySelector (text: string): Selector {
  if (typeof text !== 'string') throw invalid('a selector must be a string like "unix:uid:1001"')
  const colon = text.indexOf(':')
  if (colon <= 0 || colon === text.length - 1) throw invalidSelector(text, 'a selector needs a type and a value, as type:value')
  return Object.freeze({ type: text.slice(0, colon), value: text.slice(colon + 1) })
}

/** The selectors, each once (the first of equal ones), in the order given. */
export function uniqueSelectors (selectors: readonly Selector[]): Selector[] {
  return [...new Map(selectors.map(selector => [formatSelector(selector), selector])).values()]
}

/**
 * The column form of a validated selector set (entries' and attested agents'): a JSON array of `type:value`, in the
 * set's order. The duplicate rule compares entries by this text, so the set must already be sorted.
 */
export function selectorsToColumn (selectors: readonly Selector[]): string {
  return JSON.stringify(selectors.map(formatSelector))
}

/**
 * Reads selectorsToColumn's text back: validated before it was stored, so splitting at the first ":" is all the
 * parsing it needs. Throws on text the store did not write (a damaged row).
 */
export function selectorsFromColumn (text: string): Selector[] {
  const items: unknown = JSON.parse(text)
  if (!Array.isArray(items)) throw new TypeError('stored selectors are not a JSON array')
  return items.map(item => {
    const colon = typeof item === 'string' ? item.indexOf(':') : -1
    if (colon <= 0) throw new TypeError(`stored selector ${JSON.stringify(item)} is not "type:value"`)
    const text = item as string
    return Object.freeze({ type: text.slice(0, colon), value: text.slice(colon + 1) })
  })
}

/** Orders by type, then value, by code unit (not locale), so the order is the same on every machine. */
export function compareSelectors (a: Selector, b: Selector): number {
  if (a.type !== b.type) return a.type < b.type ? -1 : 1
  if (a.value !== b.value) return a.value < b.value ? -1 : 1
  return 0
}

function invalid (message: string): EntryError {
  return new EntryError('ERR_SELECTOR_INVALID', message)
}

function invalidSelector (text: string, problem: string): EntryError {
  const shown = text.length > 120 ? `${text.slice(0, 117)}...` : text
  return invalid(`invalid selector ${JSON.stringify(shown)}: ${problem}`)
}
