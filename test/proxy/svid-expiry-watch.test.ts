import t from 'tap'
import type { Test } from 'tap'
import pino from 'pino'
import { createTestCa } from '../../certs-test'
import type { SvidOptions, TestCa } from '../../certs-test'
import { BundleSet } from '../../spiffe/bundle-set'
import { parseSpiffeId, parseTrustDomain } from '../../spiffe/id'
import { X509Bundle } from '../../spiffe/x509-bundle'
import type { X509Svid } from '../../spiffe/workload-client'
import type { X509Context } from '../../spiffe/x509-source'
import { expiryWarningMs, SvidExpiryWatch } from '../../proxy/svid-expiry'

// The timer behind `svid_expiring` and `svid_expired`, on real certificates with chosen validity periods.

const TD = 'plant.example'
const ID = `spiffe://${TD}/app`
const WORKLOAD_API = 'unix:///run/chaperone/workload.sock'
const SECOND = 1000
const DAY = 24 * 3600 * SECOND

/** A context as X509Source gives it, for an SVID valid from `notBefore` to `notAfter` (in ms from now). */
function contextFor (ca: TestCa, fromMs: number, toMs: number): X509Context {
  const now = Date.now()
  const options: SvidOptions = { notBefore: new Date(now + fromMs), notAfter: new Date(now + toMs) }
  const issued = ca.issueSvid(ID, options)
  const svid: X509Svid = { spiffeId: ID, chain: issued.chain, key: issued.key, bundle: new X509Bundle(parseTrustDomain(TD), [ca.cert]), hint: '' }
  return Object.freeze({ svid, svids: [svid], bundles: new BundleSet(), spiffeId: parseSpiffeId(ID), notAfter: new Date(issued.leaf.validTo), receivedAt: new Date() })
}

interface Watching { watch: SvidExpiryWatch, lines: Array<Record<string, unknown>>, expired: X509Context[] }

function watching (t: Test): Watching {
  const lines: Array<Record<string, unknown>> = []
  const expired: X509Context[] = []
  const logger = pino({ level: 'debug' }, { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } })
  const watch = new SvidExpiryWatch(logger, WORKLOAD_API, context => { expired.push(context) })
  t.teardown(() => { watch.stop() })
  return { watch, lines, expired }
}

const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))
const eventsOf = (lines: Array<Record<string, unknown>>): unknown[] => lines.map(line => line.event)

void t.test('svid expiry watch – the warning margin is a tenth of the lifetime, at most a minute', async t => {
  const at = (ms: number): Date => new Date(ms)
  t.equal(expiryWarningMs(at(0), at(3600 * SECOND)), 60 * SECOND, 'an hour: one minute')
  t.equal(expiryWarningMs(at(0), at(5 * 60 * SECOND)), 30 * SECOND, 'five minutes: 30 s')
  t.equal(expiryWarningMs(at(0), at(14 * SECOND)), 1.4 * SECOND)
  t.equal(expiryWarningMs(at(5 * SECOND), at(0)), 0, 'a NotAfter before the NotBefore: no margin')
})

void t.test('svid expiry watch – inside the margin it warns once; at NotAfter it logs the expiry and calls back once', async t => {
  const { watch, lines, expired } = watching(t)
  // 20 s of life with at most 2 s left: inside the 2 s margin at once.
  const context = contextFor(createTestCa(TD), -18 * SECOND, 2 * SECOND)
  const fields = { spiffeId: ID, notAfter: context.notAfter.toISOString(), workloadApi: WORKLOAD_API }
  watch.watch(context)
  t.match(lines, [{ level: 40, event: 'svid_expiring', ...fields }], 'the warning, at once')
  watch.watch({ ...context, receivedAt: new Date() })
  t.equal(lines.length, 1, 'the same SVID again (a bundle change) does not warn again')
  while (expired.length === 0) await sleep(20)
  t.ok(Date.now() > context.notAfter.getTime(), 'not before NotAfter has passed')
  t.match(lines, [{ event: 'svid_expiring' }, { level: 50, event: 'svid_expired', ...fields }])
  t.equal(expired[0], context, 'the callback hears which SVID expired')
  await sleep(100)
  t.equal(expired.length, 1, 'once')
  t.equal(lines.length, 2)
})

void t.test('svid expiry watch – a new SVID before the expiry replaces the old one\'s timer; stop() silences it', async t => {
  const { watch, lines, expired } = watching(t)
  const ca = createTestCa(TD)
  const old = contextFor(ca, -18 * SECOND, 2 * SECOND)
  watch.watch(old)
  watch.watch(contextFor(ca, -10 * SECOND, 3600 * SECOND))
  const last = contextFor(ca, -18 * SECOND, 2 * SECOND)
  watch.watch(last)
  watch.stop()
  t.same(eventsOf(lines), ['svid_expiring', 'svid_expiring'], 'each SVID inside its margin warned')
  while (Date.now() <= Math.max(old.notAfter.getTime(), last.notAfter.getTime()) + 100) await sleep(20)
  t.same(eventsOf(lines), ['svid_expiring', 'svid_expiring'], 'neither expiry was logged: the old SVID was replaced, the last one stopped')
  t.same(expired, [])
})

void t.test('svid expiry watch – an SVID that comes already expired is logged as expired at once, without a warning', async t => {
  const { watch, lines, expired } = watching(t)
  const context = contextFor(createTestCa(TD), -20 * SECOND, -2 * SECOND)
  watch.watch(context)
  t.same(eventsOf(lines), ['svid_expired'])
  t.same(expired, [context])
})

void t.test('svid expiry watch – an SVID valid longer than a timer can wait does not overflow the timer', async t => {
  const warnings: Error[] = []
  const onWarning = (warning: Error): void => { warnings.push(warning) }
  process.on('warning', onWarning)
  t.teardown(() => { process.off('warning', onWarning) })
  const { watch, lines } = watching(t)
  const ca = createTestCa(TD, { notAfter: new Date(Date.now() + 400 * DAY) })
  watch.watch(contextFor(ca, -10 * SECOND, 300 * DAY))
  await sleep(100)
  t.same(warnings.map(w => w.name), [], 'no TimeoutOverflowWarning (which would mean a timer firing at once)')
  t.same(lines, [])
})
