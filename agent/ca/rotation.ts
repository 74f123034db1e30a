/**
 * The rotation schedule, SPIRE's, as pure functions of the keys' validity and `now`; the same for X.509 authorities
 * and JWT keys. The successor of the active key is prepared at half of the active key's life and published in the
 * bundle at once, so peers learn it before anything it signs reaches them; it is activated at five sixths; the old
 * key stays in the bundle until its NotAfter, which nothing it signed outlives (SVIDs and tokens are capped at their
 * signer's NotAfter), and is dropped after that.
 */

export type KeyState = 'active' | 'prepared' | 'retired'

/** What the schedule needs to know about an authority or JWT key. */
export interface ScheduledKey {
  readonly id: string
  readonly state: KeyState
  readonly notBefore: Date
  readonly notAfter: Date
}

export interface RotationPlan {
  /** Keys past their NotAfter, to leave the bundle. */
  readonly drop: readonly string[]
  /** Make a new key; it becomes the prepared one (or the active one at once, with `activate`). */
  readonly create: boolean
  /** The prepared key becomes active; the active one retires. */
  readonly activate: boolean
  /** Set when the plan repairs a missed schedule (the agent was not running): what was missed, for the log. */
  readonly catchUp?: string
}

/** The moment the active key's successor is prepared: half of the active key's life. */
export function preparationTime (active: ScheduledKey): Date {
  return lifeFraction(active, 1 / 2)
}

/** The moment the prepared key becomes active: five sixths of the active key's life. */
export function activationTime (active: ScheduledKey): Date {
  return lifeFraction(active, 5 / 6)
}

function lifeFraction (key: ScheduledKey, fraction: number): Date {
  const start = key.notBefore.getTime()
  return new Date(start + Math.round((key.notAfter.getTime() - start) * fraction))
}

/** A key is usable up to and including its NotAfter (RFC 5280 §4.1.2.5), so it expires just after it. */
function expired (key: ScheduledKey, now: Date): boolean {
  return now > key.notAfter
}

/** What to do at `now`. Idempotent: applying the plan and planning again at the same `now` yields an empty plan. */
export function planRotation (keys: readonly ScheduledKey[], now: Date): RotationPlan {
  const drop = keys.filter(key => expired(key, now)).map(key => key.id)
  const active = keys.find(key => key.state === 'active' && !expired(key, now))
  const prepared = keys.find(key => key.state === 'prepared' && !expired(key, now))
  if (active === undefined) {
    const lapsed = keys.find(key => key.state === 'active')
    const catchUp = lapsed === undefined
      ? undefined
      : `the active key expired at ${lapsed.notAfter.toISOString()} while the agent was not running; activating ${prepared === undefined ? 'a new key' : 'the prepared key'} at once`
    return { drop, create: prepared === undefined, activate: true, catchUp }
  }
  const activate = now >= activationTime(active)
  if (activate && prepared === undefined) {
    // SPIRE does the same: a successor that was never prepared is made and activated in one step.
    const missed = `the successor was due for preparation at ${preparationTime(active).toISOString()} but was never prepared; preparing and activating it at once`
    return { drop, create: true, activate, catchUp: missed }
  }
  return { drop, create: prepared === undefined && now >= preparationTime(active), activate }
}

export function isEmptyPlan (plan: RotationPlan): boolean {
  return plan.drop.length === 0 && !plan.create && !plan.activate
}

/** The keys after the plan, with `created` (made for a plan that asks for it) added as prepared, then promoted if due. */
export function applyPlan<K extends ScheduledKey> (keys: readonly K[], plan: RotationPlan, created?: K): K[] {
  const kept = keys.filter(key => !plan.drop.includes(key.id))
  if (created !== undefined) kept.push({ ...created, state: 'prepared' })
  if (!plan.activate) return kept
  return kept.map(key => {
    if (key.state === 'active') return { ...key, state: 'retired' }
    return key.state === 'prepared' ? { ...key, state: 'active' } : key
  })
}

/** The earliest moment after which planRotation has something to do; undefined when there are no keys at all. */
export function nextRotationAt (keys: readonly ScheduledKey[]): Date | undefined {
  const active = keys.find(key => key.state === 'active')
  const times = keys.map(key => key.notAfter.getTime() + 1)
  if (active !== undefined) {
    times.push(activationTime(active).getTime())
    if (!keys.some(key => key.state === 'prepared')) times.push(preparationTime(active).getTime())
  }
  return times.length === 0 ? undefined : new Date(Math.min(...times))
}
