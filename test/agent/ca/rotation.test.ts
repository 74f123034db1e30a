import t from 'tap'
import { activationTime, applyPlan, nextRotationAt, planRotation, preparationTime } from '../../../agent/ca/rotation'
import type { KeyState, ScheduledKey } from '../../../agent/ca/rotation'

const HOUR = 3600_000
const start = Date.parse('2031-01-01T00:00:00Z')

/** A key living `hours` from `from` hours after the start. */
function key (id: string, state: KeyState, from: number, hours = 24): ScheduledKey {
  return { id, state, notBefore: new Date(start + from * HOUR), notAfter: new Date(start + (from + hours) * HOUR) }
}

const at = (hours: number): Date => new Date(start + hours * HOUR)

void t.test('rotation – preparation at half the life, activation at five sixths', async t => {
  const active = key('a', 'active', 0)
  t.same(preparationTime(active), at(12))
  t.same(activationTime(active), at(20))
})

void t.test('rotation – nothing to do before half of the active key\'s life', async t => {
  t.same(planRotation([key('a', 'active', 0)], at(11.99)), { drop: [], create: false, activate: false })
})

void t.test('rotation – at half life a successor is prepared; at five sixths it is activated; the old one retires', async t => {
  const active = key('a', 'active', 0)
  t.same(planRotation([active], at(12)), { drop: [], create: true, activate: false })
  const prepared = key('b', 'prepared', 12)
  t.same(planRotation([active, prepared], at(19.9)), { drop: [], create: false, activate: false }, 'idempotent while waiting')
  const plan = planRotation([active, prepared], at(20))
  t.same(plan, { drop: [], create: false, activate: true })
  t.same(applyPlan([active, prepared], plan).map(k => [k.id, k.state]), [['a', 'retired'], ['b', 'active']])
})

void t.test('rotation – a retired key stays until its NotAfter (inclusive) and is dropped after', async t => {
  const keys = [key('a', 'retired', 0), key('b', 'active', 12)]
  t.same(planRotation(keys, at(24)).drop, [], 'still there at NotAfter: SVIDs it signed are valid up to then')
  const later = new Date(at(24).getTime() + 1)
  const plan = planRotation(keys, later)
  t.same(plan.drop, ['a'])
  t.same(applyPlan(keys, plan).map(k => k.id), ['b'])
})

void t.test('rotation – first start: create and activate at once, with no catch-up warning', async t => {
  const plan = planRotation([], at(0))
  t.same(plan, { drop: [], create: true, activate: true, catchUp: undefined })
  const created = key('new', 'prepared', 0)
  t.same(applyPlan([], plan, created).map(k => [k.id, k.state]), [['new', 'active']])
})

void t.test('rotation – catch-up after long downtime: expired keys dropped, the prepared or a new key activated at once', async t => {
  const stale = [key('a', 'retired', -12), key('b', 'active', 0), key('c', 'prepared', 12)]
  const withPrepared = planRotation(stale, at(30))
  t.same(withPrepared.drop, ['a', 'b'])
  t.same([withPrepared.create, withPrepared.activate], [false, true], 'the still-valid prepared key is activated')
  t.match(withPrepared.catchUp, /active key expired at 2031-01-02T00:00:00.000Z .*activating the prepared key at once/)
  t.same(applyPlan(stale, withPrepared).map(k => [k.id, k.state]), [['c', 'active']])

  const allExpired = planRotation(stale, at(100))
  t.same(allExpired.drop, ['a', 'b', 'c'])
  t.same([allExpired.create, allExpired.activate], [true, true])
  t.match(allExpired.catchUp, /activating a new key at once/)
  t.same(applyPlan(stale, allExpired, key('d', 'prepared', 100)).map(k => [k.id, k.state]), [['d', 'active']])
})

void t.test('rotation – a missed preparation is made up: prepared and activated in one step', async t => {
  const plan = planRotation([key('a', 'active', 0)], at(21))
  t.same([plan.create, plan.activate], [true, true])
  t.match(plan.catchUp, /due for preparation at 2031-01-01T12:00:00.000Z but was never prepared/)
})

void t.test('rotation – applying a plan then planning again at the same moment does nothing', async t => {
  const keys = [key('a', 'retired', -12), key('b', 'active', 0)]
  for (const hours of [0, 12, 20, 24.5, 40, 100]) {
    const plan = planRotation(keys, at(hours))
    const after = applyPlan(keys, plan, plan.create ? key(`new-${hours}`, 'prepared', hours) : undefined)
    t.same(planRotation(after, at(hours)), { drop: [], create: false, activate: false }, `idempotent at ${hours} h`)
  }
})

void t.test('rotation – nextRotationAt names the next moment with work to do', async t => {
  t.equal(nextRotationAt([]), undefined)
  t.same(nextRotationAt([key('a', 'active', 0)]), at(12), 'preparation')
  t.same(nextRotationAt([key('a', 'active', 0), key('b', 'prepared', 12)]), at(20), 'activation')
  t.same(nextRotationAt([key('a', 'retired', -12), key('b', 'active', 0), key('c', 'prepared', 12)]), new Date(at(12).getTime() + 1), 'a drop')
  for (const hours of [11.9, 12, 19.9, 20]) {
    const keys = [key('a', 'active', 0), ...(hours >= 12 ? [key('b', 'prepared', 12)] : [])]
    const due = nextRotationAt(keys) ?? at(0)
    const plan = planRotation(keys, at(hours))
    t.equal(at(hours) >= due, plan.create || plan.activate, `at ${hours} h: due exactly when the plan has work`)
  }
})
