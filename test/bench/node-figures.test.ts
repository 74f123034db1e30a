import t from 'tap'
import { HOP_FIGURES, perApp, ratioToSidecars, roundRatios, sidecarPairOf, sidecarsMb, withinTolerance } from '../../bench/node/figures'
import { HOPS, STEPS } from './node-results-fixture'

const [sameHttp, sameHttpPair, twoHttp, twoHttpPair, sameTcp, sameTcpPair] = HOPS

void t.test('node figures – medians of the rounds, CPU per 10,000 requests', async t => {
  t.equal(HOP_FIGURES.keepAliveRps.value(sameHttp), 4000)
  t.equal(HOP_FIGURES.pacedP99.value(twoHttp), 2.6)
  t.equal(HOP_FIGURES.cpuPer10k.value(sameTcp), 0.5)
})

void t.test('node figures – each node-mode hop against the sidecar pair on the same hop and mode', async t => {
  t.equal(sidecarPairOf(sameHttp, HOPS), sameHttpPair)
  t.equal(sidecarPairOf(twoHttp, HOPS), twoHttpPair, 'two devices against two devices, not the same device')
  t.equal(sidecarPairOf(sameTcp, HOPS), sameTcpPair, 'TCP against TCP')
  t.equal(ratioToSidecars(HOP_FIGURES.keepAliveRps, sameHttp, HOPS), 0.8)
  t.equal(ratioToSidecars(HOP_FIGURES.pacedP99, sameHttp, HOPS), 1.2)
  t.equal(ratioToSidecars(HOP_FIGURES.cpuPer10k, sameHttp, HOPS), 0.8)
  t.equal(ratioToSidecars(HOP_FIGURES.keepAliveRps, sameHttpPair, HOPS), 1, 'the pair is 1.00× itself')
  t.equal(ratioToSidecars(HOP_FIGURES.keepAliveRps, sameHttp, [sameHttp]), undefined, 'no pair measured, no ratio')
})

void t.test('node figures – round by round, node mode\'s figure over the pair\'s of the same round', async t => {
  const pair = { ...sameTcpPair, rounds: [...sameTcpPair.rounds].reverse() }
  const ratios = roundRatios(HOP_FIGURES.keepAliveRps, sameTcp, [sameTcp, pair])
  t.same(ratios.map(r => Math.round(r * 1000) / 1000), [0.9, 1.1, 1].map((f, i) => Math.round(f / [1, 1.1, 0.9][i] * 1000) / 1000))
  t.same(roundRatios(HOP_FIGURES.keepAliveRps, sameTcp, [sameTcp]), [], 'no pair, no ratios')
  const short = { ...sameTcpPair, rounds: sameTcpPair.rounds.slice(0, 1) }
  t.equal(roundRatios(HOP_FIGURES.keepAliveRps, sameTcp, [sameTcp, short]).length, 1, 'only rounds both have')
})

void t.test('node figures – within 10 %: rates at 0.90× or more, latencies at 1.10× or less', async t => {
  t.ok(withinTolerance(HOP_FIGURES.keepAliveRps, 0.9))
  t.ok(withinTolerance(HOP_FIGURES.keepAliveRps, 1.3), 'faster is within')
  t.notOk(withinTolerance(HOP_FIGURES.keepAliveRps, 0.89))
  t.ok(withinTolerance(HOP_FIGURES.pacedP99, 1.1))
  t.ok(withinTolerance(HOP_FIGURES.pacedP99, 0.5), 'lower latency is within')
  t.notOk(withinTolerance(HOP_FIGURES.pacedP99, 1.11))
})

void t.test('node figures – per app: (RSS(N) − RSS(1)) / (N − 1), and RSS(N) / N', async t => {
  const idle = perApp(STEPS, step => step.idle.rssMb)
  t.same(idle.map(p => p.apps), [1, 10, 50])
  t.equal(idle[0].marginalMb, undefined, 'nothing to add at one app')
  t.equal(idle[1].marginalMb, 1, '(89 − 80) / 9')
  t.equal(idle[2].marginalMb, 1, '(129 − 80) / 49')
  t.same(idle.map(p => p.averageMb), [80, 8.9, 129 / 50])
  const heap = perApp(STEPS, step => step.idle.heapTotalMb)
  t.equal(heap[2].marginalMb, 0.5)
})

void t.test('node figures – a figure missing at N, or at one app, leaves its per-app figures out', async t => {
  const peak = perApp(STEPS, step => step.peakRssMb)
  t.same(peak.map(p => p.marginalMb), [undefined, undefined, undefined], 'no peak with one app: no base to subtract')
  t.same(peak.map(p => p.averageMb), [undefined, 11.9, 159 / 50])
  const withoutOne = perApp(STEPS.slice(1), step => step.idle.rssMb)
  t.same(withoutOne.map(p => p.marginalMb), [undefined, undefined], 'no step of one app')
  t.same(withoutOne.map(p => p.averageMb), [8.9, 129 / 50])
})

void t.test('node figures – N sidecars: each one\'s private memory, the shared program pages once', async t => {
  t.equal(sidecarsMb(50, { rssMb: 70, privateMb: 25 }), 50 * 25 + 45)
  t.equal(sidecarsMb(1, { rssMb: 70, privateMb: 25 }), 70, 'one sidecar is its resident set')
})
