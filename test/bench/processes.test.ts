import t from 'tap'
import { Processes } from '../../bench/proxy/processes'

void t.test('processes – one can be stopped alone; the rest stay for stopAll', async t => {
  const processes = new Processes()
  t.teardown(async () => { await processes.stopAll() })
  const first = processes.start('first', 'sleep', ['30'])
  const second = processes.start('second', 'sleep', ['30'])
  await processes.stop(first)
  t.equal(first.child.signalCode, 'SIGTERM', 'stopped with SIGTERM')
  t.equal(second.child.exitCode, null, 'the other still runs')
  t.doesNotThrow(() => { processes.assertRunning() }, 'a process stopped on purpose is no failure')
  await processes.stopAll()
  t.equal(second.child.signalCode, 'SIGTERM')
})

void t.test('processes – a load that outlives one of them fails with that one\'s stderr', async t => {
  const processes = new Processes()
  t.teardown(async () => { await processes.stopAll() })
  const dying = processes.start('dying', 'sh', ['-c', 'echo bad config >&2; exit 1'])
  await new Promise(resolve => dying.child.once('close', resolve)) // its stderr read to the end
  await t.rejects(processes.checked(Promise.resolve('loaded')), /dying exited: bad config/)
  t.equal(await new Processes().checked(Promise.resolve('loaded')), 'loaded', 'with every process running, the load\'s own result')
})
