import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { parseChildren, parseStatTicks, parseStatusKb, processTree, treeUsage } from '../../bench/proxy/proc'

// A /proc/<pid>/stat line: pid, (comm), state, then fields 4… — utime and stime are fields 14 and 15.
const stat = (comm: string, utime: number, stime: number): string =>
  `4242 (${comm}) S 1 4242 4242 0 -1 4194624 2100 0 0 0 ${utime} ${stime} 7 8 20 0 1 0 123456 12345678 2300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0`

void t.test('proc – CPU ticks are utime + stime, whatever the command name holds', async t => {
  t.equal(parseStatTicks(stat('nginx', 150, 42)), 192)
  t.equal(parseStatTicks(stat('nginx: worker) process', 3, 4)), 7, 'a ) and spaces inside the name')
  t.equal(parseStatTicks(stat('a b (c) d', 10, 0)), 10)
  t.throws(() => parseStatTicks('4242 (x) S 1 2'), /unreadable \/proc stat line/)
})

void t.test('proc – VmRSS and VmHWM in kB from a status file', async t => {
  const status = 'Name:\tnode\nVmPeak:\t  999999 kB\nVmHWM:\t   61440 kB\nVmRSS:\t   51200 kB\nThreads:\t7\n'
  t.equal(parseStatusKb(status, 'VmHWM'), 61440)
  t.equal(parseStatusKb(status, 'VmRSS'), 51200)
  t.equal(parseStatusKb('VmRSS:\t 51200 kB\nRssAnon:\t   20480 kB\n', 'RssAnon'), 20480, 'the private part')
  t.throws(() => parseStatusKb('Name:\tkthread\n', 'VmRSS'), /no VmRSS/)
})

void t.test('proc – children lists of every thread, joined', async t => {
  t.same(parseChildren(['12 13 ', '', '14\n']), [12, 13, 14])
  t.same(parseChildren(['']), [])
})

void t.test('proc – a process tree includes a child, and its CPU and memory add up', async t => {
  const child = spawn(process.execPath, ['-e', 'const end = Date.now() + 300; while (Date.now() < end); setTimeout(() => {}, 10000)'], { stdio: 'ignore' })
  t.teardown(() => { child.kill() })
  await new Promise(resolve => setTimeout(resolve, 400))
  const tree = processTree(process.pid)
  t.ok(tree.includes(child.pid as number), 'the child is in our tree')
  t.equal(tree[0], process.pid)
  const mine = treeUsage(child.pid as number)
  const all = treeUsage(process.pid)
  t.ok(mine.cpuTicks >= 10, `the child spun ~300 ms: ${mine.cpuTicks} ticks`)
  t.ok(all.cpuTicks > mine.cpuTicks && all.rssKb > mine.rssKb, 'the tree sums both processes')
  t.ok(mine.peakRssKb >= mine.rssKb)
  child.kill()
  await once(child, 'exit')
  t.throws(() => processTree(child.pid as number), /is gone/)
})
