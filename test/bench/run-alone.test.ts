import t from 'tap'
import { withCleanUp } from '../../bench/run-alone'

void t.test('run alone – the clean-up runs once after the run, whether it ends or fails, and SIGINT is let go', async t => {
  let cleaned = 0
  const cleanUp = async (): Promise<void> => { cleaned++ }
  const listeners = process.listenerCount('SIGINT')
  t.equal(await withCleanUp(cleanUp, async () => 'lines'), 'lines')
  t.equal(cleaned, 1)
  await t.rejects(withCleanUp(cleanUp, async () => { throw new Error('a proxy exited') }), /a proxy exited/)
  t.equal(cleaned, 2, 'after a failure too')
  t.equal(process.listenerCount('SIGINT'), listeners, 'no SIGINT handler left behind')
})
