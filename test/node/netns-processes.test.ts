import t from 'tap'
import type { Test } from 'tap'
import { once } from 'node:events'
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { Socket } from 'node:net'
import { Netns, ProcessHandles, netnsOfProcess, pidsInNetns } from '../../node'
import type { NetnsError, ProcessEnd } from '../../node'
import { NETNS_SKIP, createTopology } from '../helpers/netns'
import { thrown } from '../helpers/errors'

// The processes of a network namespace found by scanning /proc, held by pidfd, and their exits noticed.

/** This process's open pidfds (other descriptors come and go with child processes' pipes). */
function pidfdCount (): number {
  return readdirSync('/proc/self/fd').filter(fd => {
    try { return readlinkSync(`/proc/self/fd/${fd}`) === 'anon_inode:[pidfd]' } catch { return false }
  }).length
}

/** Waits until `child` (started through `ip netns exec`) has become `comm`, so its PID is the command's. */
async function became (child: ChildProcess, comm: string): Promise<number> {
  const pid = child.pid as number
  for (let i = 0; i < 100; i++) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === comm) return pid
    } catch { /* not yet */ }
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  throw new Error(`process ${pid} did not become ${comm}`)
}

async function settled (ended: Promise<ProcessEnd>, ms: number): Promise<ProcessEnd | 'pending'> {
  let timer: NodeJS.Timeout | undefined
  const pending = new Promise<'pending'>(resolve => { timer = setTimeout(() => { resolve('pending') }, ms) })
  try {
    return await Promise.race([ended, pending])
  } finally {
    clearTimeout(timer)
  }
}

void t.test('netns processes', { skip: NETNS_SKIP }, async t => {
  const topology = await createTopology({ prefix: 'nsp', hosts: ['a', 'b'] })
  t.teardown(topology.destroy)
  const netns = new Netns()
  t.teardown(() => { netns.close() })
  const a = netns.open(`/var/run/netns/${topology.hosts.a.ns}`)
  const b = netns.open(`/var/run/netns/${topology.hosts.b.ns}`)
  const handles = new ProcessHandles({ pollIntervalMs: 50 })
  t.teardown(() => { handles.close() })

  /** A sleeper in `host`, killed when the (sub)test `owner` ends. */
  const sleepIn = async (owner: Test, host: string): Promise<{ child: ChildProcess, pid: number }> => {
    const child = topology.spawn(host, 'sleep', ['120'])
    owner.teardown(() => { child.kill('SIGKILL') })
    return { child, pid: await became(child, 'sleep') }
  }

  void t.test('the PIDs of processes started in a are found, and only there', async t => {
    const first = await sleepIn(t, 'a')
    const second = await sleepIn(t, 'a')
    const inA = pidsInNetns(a.identity)
    t.same(inA, [first.pid, second.pid].sort((x, y) => x - y), 'exactly the two processes in a, in ascending order')
    t.same(pidsInNetns(b.identity), [], 'b holds no process')
    const inHome = pidsInNetns(netns.homeIdentity)
    t.ok(inHome.includes(process.pid), 'this process is in its own namespace')
    t.notOk(inHome.includes(first.pid))
    t.equal(netnsOfProcess(first.pid), a.identity)
    t.equal(netnsOfProcess(first.pid + 4_000_000), undefined, 'no such process')
  })

  void t.test('a process that vanishes during the scan is skipped', async t => {
    // A stand-in for /proc: 100 has vanished (its folder is empty), 200 is in a, 300 in b, "self" is not a PID.
    const proc = mkdtempSync(join(tmpdir(), 'chaperone-proc-'))
    t.teardown(() => { rmSync(proc, { recursive: true, force: true }) })
    for (const [pid, target] of [['100', undefined], ['200', `/var/run/netns/${topology.hosts.a.ns}`], ['300', `/var/run/netns/${topology.hosts.b.ns}`], ['self', '/proc/self/ns/net']] as const) {
      mkdirSync(join(proc, pid, 'ns'), { recursive: true })
      if (target !== undefined) symlinkSync(target, join(proc, pid, 'ns', 'net'))
    }
    t.same(pidsInNetns(a.identity, proc), [200])
    t.same(pidsInNetns(b.identity, proc), [300])
  })

  void t.test('a pidfd holds a process in a and reports its exit', async t => {
    const { child, pid } = await sleepIn(t, 'a')
    const before = pidfdCount()
    const handle = handles.open(pid, a.identity)
    t.equal(handle.pid, pid)
    t.ok(handle.fd >= 0)
    t.equal(pidfdCount(), before + 1)
    t.equal(handle.hasExited(), false)
    t.equal(await settled(handle.ended, 200), 'pending', 'alive: the hold goes on')
    const exit = once(child, 'exit')
    child.kill('SIGKILL')
    t.equal(await settled(handle.ended, 2000), 'exited', 'the exit is noticed')
    await exit
    t.equal(handle.exited, true)
    t.equal(handle.fd, -1)
    t.equal(pidfdCount(), before, 'the pidfd is closed once the process has exited')
    t.equal(handles.size, 0)
  })

  void t.test('why exits are polled: Node cannot wait on a pidfd', async t => {
    const { pid } = await sleepIn(t, 'a')
    const handle = handles.open(pid)
    t.teardown(() => { handle.close() })
    t.throws(() => new Socket({ fd: handle.fd }), { code: 'ERR_INVALID_FD_TYPE' }, 'libuv takes an anonymous inode for an UNKNOWN handle')
  })

  void t.test('hasExited answers at once, before the next poll', async t => {
    const slow = new ProcessHandles({ pollIntervalMs: 60_000 })
    t.teardown(() => { slow.close() })
    const { child, pid } = await sleepIn(t, 'a')
    const handle = slow.open(pid)
    const exit = once(child, 'exit')
    child.kill('SIGKILL')
    await exit
    t.equal(handle.exited, false, 'no poll has run yet')
    t.equal(handle.hasExited(), true)
    t.equal(await handle.ended, 'exited')
  })

  void t.test('processes elsewhere, gone or not processes are refused with coded errors', async t => {
    const before = pidfdCount()
    const inB = await sleepIn(t, 'b')
    const elsewhere = thrown(() => handles.open(inB.pid, a.identity)) as NetnsError
    t.match(elsewhere, { code: 'ERR_NETNS_PROCESS_GONE', message: /is not in network namespace/ })

    const exit = once(inB.child, 'exit')
    inB.child.kill('SIGKILL')
    await exit // reaped by Node: the PID names no process now
    t.match(thrown(() => handles.open(inB.pid)), { code: 'ERR_NETNS_PROCESS_GONE', errno: 'ESRCH' })
    t.match(thrown(() => handles.open(0)), { code: 'ERR_NETNS_PROCESS_GONE', message: /not a process ID/ })

    const thread = readdirSync('/proc/self/task').map(Number).find(tid => tid !== process.pid)
    t.ok(thread !== undefined, 'this process has another thread')
    t.match(thrown(() => handles.open(thread as number)), { code: 'ERR_NETNS_PIDFD', errno: /^(EINVAL|ENOENT)$/, message: /thread/ })
    t.equal(pidfdCount(), before, 'no descriptor left behind')
  })

  void t.test('openIn holds the lowest PID of the namespace, or nothing', async t => {
    const first = await sleepIn(t, 'a')
    const second = await sleepIn(t, 'a')
    const handle = handles.openIn(a.identity)
    t.equal(handle?.pid, Math.min(...pidsInNetns(a.identity)))
    t.ok(handle !== undefined && [first.pid, second.pid].includes(handle.pid))
    handle?.close()
    t.equal(handles.openIn(b.identity), undefined, 'b holds no process')
  })

  void t.test('closing ends holds as closed and closes their pidfds', async t => {
    const { pid } = await sleepIn(t, 'a')
    const before = pidfdCount()
    const one = handles.open(pid)
    const two = handles.open(pid)
    t.equal(pidfdCount(), before + 2)
    one.close()
    one.close()
    t.equal(await one.ended, 'closed')
    t.equal(one.exited, false)
    handles.close()
    t.equal(await two.ended, 'closed')
    t.equal(handles.size, 0)
    t.equal(pidfdCount(), before)
  })
})
