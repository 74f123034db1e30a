import t from 'tap'
import { join } from 'node:path'
import { resultsDir } from '../../bench/proxy/run'

// A benchmark run leaves the committed results alone: it writes to the untracked bench/out/ unless asked.
void t.test('results dir – bench/out/ by default, the committed bench/ only with CHAPERONE_BENCH_UPDATE=1', async t => {
  const bench = join(__dirname, '..', '..', 'bench')
  t.equal(resultsDir({}), join(bench, 'out'))
  t.equal(resultsDir({ CHAPERONE_BENCH_UPDATE: '0' }), join(bench, 'out'))
  t.equal(resultsDir({ CHAPERONE_BENCH_UPDATE: '1' }), bench)
})
