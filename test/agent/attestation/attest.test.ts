import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync, realpathSync } from 'node:fs'
import { formatSelector } from '../../../agent/store'
import { WorkloadAttestor, peerCredentials } from '../../../agent/attestation'
import type { PeerCredentials } from '../../../agent/attestation'
import { FAKE_PID, fakeProc } from './fixtures/fake-proc'
import { NEEDS_ROOT, connectedChild, peerServer } from './fixtures/peer'

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find(path => existsSync(path))
const NODE_PATH = realpathSync(process.execPath)
/** Computed by coreutils, not by the code under test. */
const NODE_SHA256 = spawnSync('sha256sum', [NODE_PATH], { encoding: 'utf8' }).stdout.split(' ')[0]

async function attestTexts (attestor: WorkloadAttestor, caller: PeerCredentials): Promise<string[]> {
  return (await attestor.attest(caller)).map(formatSelector)
}

const self: PeerCredentials = { pid: process.pid, uid: 0, gid: 0 }

void t.test('attest – a child under uid/gid 1234 with supplementary groups gets the kernel\'s facts', { skip: NEEDS_ROOT }, async t => {
  const server = await peerServer(t)
  const wrapper = SETPRIV === undefined ? [] : [SETPRIV, '--reuid=1234', '--regid=1234', '--groups=2000,2001']
  const { socket } = await connectedChild(t, server, wrapper, SETPRIV === undefined ? { uid: 1234, gid: 1234 } : {})
  const selectors = await attestTexts(new WorkloadAttestor(), peerCredentials(socket))
  t.match(NODE_SHA256, /^[0-9a-f]{64}$/)
  for (const expected of ['unix:uid:1234', 'unix:gid:1234', `unix:path:${NODE_PATH}`, `unix:sha256:${NODE_SHA256}`]) {
    t.ok(selectors.includes(expected), expected)
  }
  if (SETPRIV === undefined) t.comment('setpriv is not installed: supplementary groups not checked')
  else t.ok(selectors.includes('unix:supplementary_gid:2000') && selectors.includes('unix:supplementary_gid:2001'), 'supplementary gids')
  if (!readFileSync('/etc/passwd', 'utf8').split('\n').some(line => line.split(':')[2] === '1234')) {
    t.notOk(selectors.some(text => text.startsWith('unix:user:')), 'a uid without a name gets no user selector')
  }
  t.same(selectors, [...selectors].sort(), 'sorted')
})

void t.test('attest – names come from /etc/passwd and /etc/group; output is canonical and sorted', async t => {
  const selectors = await attestTexts(new WorkloadAttestor(), self)
  const root = readFileSync('/etc/passwd', 'utf8').startsWith('root:x:0:0:')
  if (root) t.ok(selectors.includes('unix:user:root') && selectors.includes('unix:group:root'), 'uid 0 is root')
  t.equal(new Set(selectors).size, selectors.length, 'no duplicates')
})

void t.test('attest – the executable is hashed once, and not at all above maxHashBytes', async t => {
  const attestor = new WorkloadAttestor()
  await attestor.attest(self)
  await attestor.attest(self)
  t.equal(attestor.exeHashesComputed, 1, 'the second attestation is answered from the cache')
  const small = await attestTexts(new WorkloadAttestor({ maxHashBytes: 1024 }), self)
  t.ok(small.includes(`unix:path:${NODE_PATH}`), 'the path is still reported')
  t.notOk(small.some(text => text.startsWith('unix:sha256:')), 'no sha256 selector')
})

void t.test('attest – effective ids count, and a deleted executable gives no path or hash', async t => {
  const procRoot = fakeProc(t, { exe: '/opt/app/bin/server (deleted)' })
  const selectors = await attestTexts(new WorkloadAttestor({ procRoot }), { pid: FAKE_PID, uid: 1000, gid: 1000 })
  t.ok(selectors.includes('unix:uid:1234') && selectors.includes('unix:gid:1234'), 'effective uid/gid, not real')
  t.notOk(selectors.includes('unix:uid:1000'))
  t.ok(selectors.includes('unix:supplementary_gid:5678'))
  t.notOk(selectors.some(text => text.startsWith('unix:path:') || text.startsWith('unix:sha256:')))
})

void t.test('attest – a caller that has exited is reported as gone', async t => {
  const procRoot = fakeProc(t)
  await t.rejects(new WorkloadAttestor({ procRoot }).attest({ pid: FAKE_PID + 1, uid: 0, gid: 0 }),
    { code: 'ERR_ATTESTATION_PROCESS_GONE', message: new RegExp(String(FAKE_PID + 1)) })
  await t.rejects(new WorkloadAttestor().attest({ pid: 0, uid: 0, gid: 0 }), { code: 'ERR_ATTESTATION_PROCESS_GONE' })
})
