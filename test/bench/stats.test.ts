import t from 'tap'
import { median, percentile, summarize } from '../../bench/proxy/stats'

void t.test('stats – the median of an odd and an even count, whatever the order', async t => {
  t.equal(median([3, 1, 2]), 2)
  t.equal(median([4, 1, 3, 2]), 2.5)
  t.equal(median([7]), 7)
  t.throws(() => median([]), /no values/)
})

void t.test('stats – nearest-rank percentiles are always one of the samples', async t => {
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1) // 1..100
  t.equal(percentile(hundred, 50), 50)
  t.equal(percentile(hundred, 99), 99)
  t.equal(percentile(hundred, 100), 100)
  t.equal(percentile(hundred, 1), 1)
  const ten = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
  t.equal(percentile(ten, 99), 10, 'p99 of 10 samples is the largest')
  t.equal(percentile(ten, 50), 5)
  t.equal(percentile(ten, 51), 6)
  t.throws(() => percentile(ten, 0), /not in/)
  t.throws(() => percentile(ten, 101), /not in/)
  t.throws(() => percentile([], 50), /no values/)
})

void t.test('stats – summarize sorts numerically, not as strings', async t => {
  // As strings, 10 and 100 would sort before 9.
  const latencies = [9, 100, 10, ...Array.from({ length: 97 }, () => 1)]
  t.same(summarize(latencies), { count: 100, p50Ms: 1, p99Ms: 10, maxMs: 100 })
  t.same(latencies.slice(0, 3), [9, 100, 10], 'the input is left as it was')
})
