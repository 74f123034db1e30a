/**
 * BundlePoll: the device's copy of the trust domain's bundle kept current from the upstream. Every fetched bundle goes
 * to the CA; an outage is logged once when it starts and once when it ends, not at every poll; polls never overlap,
 * each starting an interval after the previous one ended; stop() ends them. The upstream and the CA are scripted
 * stand-ins here (the real pair is in test/interop/device-ca.interop.ts); waits are on events, not fixed sleeps,
 * except where a test proves that nothing more happens.
 */
import t from 'tap'
import type { Test } from 'tap'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { SpiffeBundle } from '../../../spiffe'
import { BundlePoll, UpstreamError } from '../../../agent/upstream'
import { capturedLogger, td } from '../ca/fixtures/ca-fixtures'

const INTERVAL_MS = 20
/** How long a test waits for a condition before it fails. */
const UNTIL_MS = 5000
const LOST = 'upstream: cannot read the bundle; serving the one held, retrying'
const BACK = 'upstream: reachable again; bundle in sync'

/** What a fetch does: answer a bundle, or fail. */
type Step = 'ok' | 'fail'

interface Stand {
  poll: BundlePoll
  /** Bundles fetched, in order (a failed fetch leaves none). */
  fetched: SpiffeBundle[]
  /** What the CA was given, in order. */
  updates: SpiffeBundle[]
  /** Each poll: when its fetch started, and when it ended (its fetch failed, or the CA's update returned). */
  polls: Array<{ start: number, end?: number }>
  records: ReturnType<typeof capturedLogger>['records']
  /** Resolves once `check` holds, checked as each poll starts and ends; rejects after UNTIL_MS. */
  until: (check: () => boolean) => Promise<void>
}

/**
 * A poll over a scripted upstream (step `i` of `script` for fetch `i`, 'ok' once the script is done) and a CA that
 * records its updates; `fetchDelay` and `updateDelay` make either slow. Stopped when the test ends.
 */
function stand (t: Test, script: Step[], options: { intervalMs?: number, fetchDelay?: () => Promise<void>, updateDelay?: () => Promise<void> } = {}): Stand {
  const { logger, records } = capturedLogger()
  const fetched: SpiffeBundle[] = []
  const updates: SpiffeBundle[] = []
  const polls: Stand['polls'] = []
  const waiters: Array<{ check: () => boolean, resolve: () => void }> = []
  const changed = (): void => {
    setImmediate(() => {
      for (const waiter of waiters.filter(({ check }) => check())) {
        waiters.splice(waiters.indexOf(waiter), 1)
        waiter.resolve()
      }
    })
  }
  const ended = (): void => {
    const poll = polls.at(-1)
    if (poll !== undefined) poll.end = performance.now()
    changed()
  }
  const poll = new BundlePoll({
    upstream: {
      name: 'SPIRE server 10.0.0.1:8081',
      fetchBundle: async () => {
        const step = script[polls.length] ?? 'ok'
        polls.push({ start: performance.now() })
        changed()
        await options.fetchDelay?.()
        if (step === 'fail') {
          ended()
          throw new UpstreamError('ERR_UPSTREAM_UNREACHABLE', 'SPIRE server 10.0.0.1:8081 is unreachable: connect ECONNREFUSED')
        }
        const bundle = new SpiffeBundle(td, { sequence: polls.length })
        fetched.push(bundle)
        return bundle
      }
    },
    ca: {
      updateUpstreamBundle: async bundle => {
        await options.updateDelay?.()
        updates.push(bundle)
        ended()
        return true
      }
    },
    logger,
    intervalMs: options.intervalMs ?? INTERVAL_MS
  })
  t.teardown(() => { poll.stop() })
  // The poll's timers are unref'd (they never keep the agent alive): the deadline keeps this process up meanwhile.
  const until = async (check: () => boolean): Promise<void> => {
    if (check()) return
    let deadline: NodeJS.Timeout | undefined
    await new Promise<void>((resolve, reject) => {
      waiters.push({ check, resolve })
      deadline = setTimeout(() => { reject(new Error(`gave up after ${UNTIL_MS} ms: ${String(check)}`)) }, UNTIL_MS)
    }).finally(() => { clearTimeout(deadline) })
  }
  return { poll, fetched, updates, polls, records, until }
}

const messages = (records: Stand['records']): string[] => records.filter(record => record.msg === LOST || record.msg === BACK).map(record => record.msg)

void t.test('bundle poll – one warning when the upstream is lost, one info line when it is back; every fetched bundle goes to the CA', { timeout: 10_000 }, async t => {
  const s = stand(t, ['fail', 'fail', 'fail', 'ok', 'ok', 'fail', 'fail', 'ok'])
  t.equal(s.poll.lastContact, undefined, 'no contact before the first poll')
  s.poll.start()
  await s.until(() => s.polls.length >= 3 && s.polls[2].end !== undefined)
  t.equal(s.poll.lastContact, undefined, 'nor while the upstream is away')
  await s.until(() => s.updates.length === 3)
  s.poll.stop()
  t.same(messages(s.records), [LOST, BACK, LOST, BACK], 'three failed polls: one warning; the next answer: one info line; and again for the second outage')
  const [lost, back] = s.records.filter(record => record.msg === LOST || record.msg === BACK)
  t.match(lost, { level: 40, upstream: 'SPIRE server 10.0.0.1:8081', err: { code: 'ERR_UPSTREAM_UNREACHABLE' } }, 'the warning names the upstream and the error')
  t.match(back, { level: 30, upstream: 'SPIRE server 10.0.0.1:8081', lostSeconds: Number }, 'the info line says how long it was lost')
  t.equal(s.updates.length, s.fetched.length, 'each fetched bundle was handed to the CA')
  t.ok(s.updates.every((bundle, i) => bundle === s.fetched[i]), 'the very bundles fetched, in order')
  t.same(s.updates.map(bundle => bundle.sequence), [4, 5, 8], 'from the polls that succeeded')
  t.ok(s.poll.lastContact instanceof Date, 'the last contact is known')
})

void t.test('bundle poll – the first poll is at once, the next only an interval later', { timeout: 10_000 }, async t => {
  const s = stand(t, [], { intervalMs: 60_000 })
  const started = performance.now()
  s.poll.start()
  await s.until(() => s.updates.length === 1)
  t.ok(performance.now() - started < 5000, 'the first bundle arrives without waiting for the interval')
  await sleep(5 * INTERVAL_MS)
  t.equal(s.polls.length, 1, 'no second poll before the interval')
})

void t.test('bundle poll – a slow fetch or update is never overlapped; the next poll starts an interval after the previous ended', { timeout: 10_000 }, async t => {
  const s = stand(t, ['ok', 'fail', 'ok', 'ok'], {
    fetchDelay: async () => { await sleep(3 * INTERVAL_MS) },
    updateDelay: async () => { await sleep(2 * INTERVAL_MS) }
  })
  s.poll.start()
  await s.until(() => s.polls.length === 4 && s.polls[3].end !== undefined)
  s.poll.stop()
  for (let i = 1; i < s.polls.length; i++) {
    const gap = s.polls[i].start - (s.polls[i - 1].end ?? Infinity)
    // Timers may fire up to a millisecond early (they count in whole milliseconds).
    t.ok(gap >= INTERVAL_MS - 2, `poll ${i + 1} started ${gap.toFixed(1)} ms after poll ${i} ended (interval ${INTERVAL_MS} ms)`)
  }
  t.equal(s.updates.length, 3)
})

void t.test('bundle poll – stop() ends polling, also with a fetch in flight, and a failure after it is not reported', { timeout: 10_000 }, async t => {
  const s = stand(t, [])
  s.poll.start()
  await s.until(() => s.updates.length === 2)
  s.poll.stop()
  const polls = s.polls.length
  await sleep(5 * INTERVAL_MS)
  t.equal(s.polls.length, polls, 'no poll after stop()')

  let release: () => void = () => {}
  const held = stand(t, ['fail'], { fetchDelay: async () => { await new Promise<void>(resolve => { release = resolve }) } })
  held.poll.start()
  await held.until(() => held.polls.length === 1)
  held.poll.stop()
  release()
  await sleep(5 * INTERVAL_MS)
  t.equal(held.polls.length, 1, 'the poll in flight is the last one')
  t.same(messages(held.records), [], 'its failure, after stop(), is not reported as a lost upstream')
})
