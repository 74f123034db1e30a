import t from 'tap'
import { LOADS, planOf } from '../../bench/proxy/loads'

void t.test('loads – three rounds of the full loads, unless a quick smoke run is asked for', async t => {
  t.same(planOf({}), { rounds: 3, loads: LOADS, quick: false })
  t.same(planOf({ CHAPERONE_BENCH_QUICK: '0' }), { rounds: 3, loads: LOADS, quick: false })
  const quick = planOf({ CHAPERONE_BENCH_QUICK: '1' })
  t.equal(quick.rounds, 1)
  t.equal(quick.quick, true)
  t.same([quick.loads.keepAlive.seconds, quick.loads.newConnections.seconds, quick.loads.body.seconds, quick.loads.paced.seconds], [2, 2, 1, 2])
  t.equal(quick.loads.newConnections.header, 'Connection: close', 'the same loads, only shorter')
  t.equal(quick.loads.keepAlive.connections, LOADS.keepAlive.connections)
  t.equal(quick.loads.paced.rate, LOADS.paced.rate)
})
