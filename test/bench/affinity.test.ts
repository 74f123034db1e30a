import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { allowCpus, benchCpus, firstCpu, onOneCpu, parseAllowedCpus } from '../../bench/proxy/affinity'

void t.test('affinity – the allowed CPUs from a status file, and the first of a list', async t => {
  t.equal(parseAllowedCpus('Name:\tghostunnel\nCpus_allowed:\t3\nCpus_allowed_list:\t0-1\nMems_allowed_list:\t0\n'), '0-1')
  t.equal(parseAllowedCpus('Cpus_allowed_list:\t2,4-7\n'), '2,4-7')
  t.throws(() => parseAllowedCpus('Name:\tx\n'), /no Cpus_allowed_list/)
  t.equal(firstCpu('0-1'), 0)
  t.equal(firstCpu('3'), 3)
  t.equal(firstCpu('2,4-7'), 2)
  t.equal(firstCpu('12-15,20'), 12)
  t.throws(() => firstCpu(''), /unreadable CPU list/)
  t.same(onOneCpu(1, '/bin/ghostunnel', ['server', '--listen', 'x']), ['-c', '1', '/bin/ghostunnel', 'server', '--listen', 'x'])
})

void t.test('affinity – a process started on one CPU is then allowed every CPU the benchmark has', async t => {
  const cpus = benchCpus()
  const child = spawn('taskset', onOneCpu(firstCpu(cpus), 'sleep', ['30']), { stdio: 'ignore' })
  t.teardown(() => { child.kill('SIGKILL') })
  await once(child, 'spawn')
  const status = (): string => readFileSync(`/proc/${child.pid}/status`, 'utf8')
  // taskset sets the affinity, then execs the command under the same pid.
  for (let i = 0; i < 100 && !status().startsWith('Name:\tsleep'); i++) await new Promise(resolve => setTimeout(resolve, 10))
  t.equal(parseAllowedCpus(status()), String(firstCpu(cpus)))
  await allowCpus(child.pid as number, cpus)
  t.equal(parseAllowedCpus(status()), cpus)
})
