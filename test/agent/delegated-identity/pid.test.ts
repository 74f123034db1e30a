import t from 'tap'
import type { Test } from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { readlinkSync, realpathSync } from 'node:fs'
import { status } from '@grpc/grpc-js'
import { TD, startDelegatedStand, uid, until } from './fixtures/delegated-stand'
import type { X509SvidsMessage } from './fixtures/delegated-stand'

// SubscribeToX509SVIDs by PID: the agent attests the process itself (the Workload API's attestor: unix and docker
// selectors), pinned by its start time; beyond SPIRE, the stream ends NOT_FOUND when that process is gone, so a
// delegate never goes on receiving the identity of a PID that may name another process next.

const SLEEP = realpathSync(spawnSync('sh', ['-c', 'command -v sleep'], { encoding: 'utf8' }).stdout.trim())
const asRoot = (process.getuid?.() ?? 0) !== 0 ? 'needs root: the workload runs as another uid' : false

/** `sleep` as a child, once it runs sleep's executable (not node's, between fork and exec); killed with the test. */
async function sleeper (t: Test, options: { uid?: number, gid?: number } = {}): Promise<ChildProcess & { pid: number }> {
  const child = spawn(SLEEP, ['60'], { stdio: 'ignore', ...options })
  t.teardown(() => { child.kill('SIGKILL') })
  const pid = child.pid
  if (pid === undefined) throw new Error('sleep did not start')
  await until(() => { try { return readlinkSync(`/proc/${pid}/exe`) === SLEEP } catch { return false } }, 'sleep to exec')
  return child as ChildProcess & { pid: number }
}

void t.test('delegated pid – the agent attests the PID itself; the stream ends NOT_FOUND once the process exits', async t => {
  const stand = await startDelegatedStand(t)
  // Our uid runs sleep: the entry needs sleep's executable too, so this process (node) does not match it.
  stand.agent.store.createEntry({ spiffeId: `spiffe://${TD}/sleeper`, selectors: [`unix:uid:${uid}`, `unix:path:${SLEEP}`] })
  const child = await sleeper(t)
  const stream = stand.client().subscribe<X509SvidsMessage>('SubscribeToX509SVIDs', { pid: child.pid })
  const first = await stream.next(0, 'the sleeper\'s SVID')
  t.same(first.x509_svids.map(svid => svid.x509_svid.id.path), ['/sleeper'], 'the entries the process\'s own selectors match, and only those (not the delegate\'s)')
  t.match(stand.logs().find(l => l.msg === 'delegated identity API: subscription opened'), { stream: 'x509-svids', subjectPid: child.pid, svids: 1 })
  t.equal(await stream.endedWithin(300), undefined, 'open while the process runs')

  const exitedAt = Date.now()
  child.kill('SIGKILL')
  const ended = await stream.endedWithin(8000)
  t.match(ended, { code: status.NOT_FOUND, details: `process ${child.pid} has exited` }, 'ended NOT_FOUND, naming the PID')
  t.ok(Date.now() - exitedAt < 5000, `within a few seconds (${Date.now() - exitedAt} ms)`)
  t.match(stand.logs().filter(l => l.msg === 'delegated identity API: subscription closed'), [{ stream: 'x509-svids', subjectPid: child.pid, code: 'NOT_FOUND', lastSent: 1 }], 'logged')
  t.ok(stand.logs().some(l => typeof l.msg === 'string' && l.msg.includes(`process ${child.pid} has exited`)), 'a line saying the process exited')

  // The PID now names no process: refused at once.
  t.match(await stand.client().subscribe('SubscribeToX509SVIDs', { pid: child.pid }).endedWithin(5000), { code: status.NOT_FOUND, details: `process ${child.pid} does not exist` })
})

void t.test('delegated pid – an entry change for the process resends; the stream holds the pinned process only', async t => {
  const stand = await startDelegatedStand(t)
  const entry = stand.agent.store.createEntry({ spiffeId: `spiffe://${TD}/sleeper`, selectors: [`unix:uid:${uid}`, `unix:path:${SLEEP}`] })
  const child = await sleeper(t)
  const stream = stand.client().subscribe<X509SvidsMessage>('SubscribeToX509SVIDs', { pid: child.pid })
  await stream.next(0, 'the SVID', m => m.x509_svids.length === 1)
  const mark = stream.messages.length
  stand.agent.store.updateEntry(entry.id, { hint: 'pinned' })
  t.equal((await stream.next(mark, 'the hint', m => m.x509_svids[0]?.x509_svid.hint === 'pinned')).x509_svids.length, 1, 'updated: resent')
  stand.agent.store.deleteEntry(entry.id)
  t.same((await stream.next(mark, 'an empty set', m => m.x509_svids.length === 0)).x509_svids, [], 'deleted: the set is empty, the stream open while the process runs')
})

void t.test('delegated pid – a workload running as another uid gets the entry of its unix:uid', { skip: asRoot }, async t => {
  const stand = await startDelegatedStand(t)
  stand.agent.store.createEntry({ spiffeId: `spiffe://${TD}/other-user`, selectors: ['unix:uid:64501'] })
  const child = await sleeper(t, { uid: 64501, gid: 64501 })
  const stream = stand.client().subscribe<X509SvidsMessage>('SubscribeToX509SVIDs', { pid: child.pid })
  t.same((await stream.next(0, 'the SVID')).x509_svids.map(svid => svid.x509_svid.id.path), ['/other-user'])
  child.kill('SIGKILL')
  t.match(await stream.endedWithin(8000), { code: status.NOT_FOUND, details: `process ${child.pid} has exited` })
})
