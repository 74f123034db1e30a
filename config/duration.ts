/**
 * Durations as operators write them, the same in every file and flag: whole seconds (`30`), or hours, minutes and
 * seconds (`90s`, `5m`, `1h`, `1h30m`). Apart from load.ts so the CLI can parse a flag without loading ajv and YAML.
 */
/** A duration as text: hours, minutes and seconds, in that order, each optional, at least one. */
const DURATION_TEXT = /^(?=\d)(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/

export const DURATION_SCHEMA = {
  anyOf: [
    { type: 'integer', minimum: 1 },
    { type: 'string', pattern: DURATION_TEXT.source, minLength: 2 }
  ]
} as const

/** How a problem message says what a duration may be. */
export const DURATION_FORMS = 'whole seconds (30) or 30s, 5m, 1h, 1h30m'

/** Seconds of a value that passed DURATION_SCHEMA. */
export function durationSeconds (value: number | string): number {
  if (typeof value === 'number') return value
  const match = DURATION_TEXT.exec(value)
  const [h, m, s] = [match?.[1], match?.[2], match?.[3]].map(part => Number(part ?? 0))
  return h * 3600 + m * 60 + s
}

/** Seconds of a duration written as text (a flag): whole seconds or the forms above; undefined for anything else or zero. */
export function parseDuration (text: string): number | undefined {
  const seconds = /^\d+$/.test(text) ? Number(text) : text.length >= 2 && DURATION_TEXT.test(text) ? durationSeconds(text) : undefined
  return seconds === undefined || seconds <= 0 ? undefined : seconds
}
