import t from 'tap'
import { formatSelector } from '../../../agent/store'
import { WorkloadAttestor } from '../../../agent/attestation'
import { parseContainerId } from '../../../agent/attestation/container-id'
import { CONTAINER_ID, FAKE_PID, fakeProc } from './fixtures/fake-proc'

const OTHER_ID = 'f'.repeat(64)

void t.test('container id – read from cgroup v1, v2, containerd and cri-o paths', async t => {
  const found = { kind: 'found', id: CONTAINER_ID }
  t.same(parseContainerId(`12:memory:/docker/${CONTAINER_ID}\n11:cpu,cpuacct:/docker/${CONTAINER_ID}\n`), found, 'cgroup v1, docker')
  t.same(parseContainerId(`0::/system.slice/docker-${CONTAINER_ID}.scope\n`), found, 'cgroup v2, systemd driver')
  t.same(parseContainerId(`0::/system.slice/docker-${CONTAINER_ID}.scope/init\n`), found, 'a sub-cgroup inside the scope')
  t.same(parseContainerId(`0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1234_5678.slice/cri-containerd-${CONTAINER_ID}.scope\n`), found, 'containerd')
  t.same(parseContainerId(`0::/kubepods/burstable/pod0a1b2c3d-1111-2222-3333-444455556666/${CONTAINER_ID}\n`), found, 'kubepods, cgroupfs driver')
  t.same(parseContainerId(`0::/machine.slice/crio-${CONTAINER_ID}.scope\n`), found, 'cri-o')
  t.same(parseContainerId(`0::/docker/${OTHER_ID}/docker/${CONTAINER_ID}\n`), found, 'docker-in-docker: the innermost')
})

void t.test('container id – none outside a container, ambiguous when lines disagree', async t => {
  t.same(parseContainerId('0::/user.slice/user-1000.slice/session-3.scope\n'), { kind: 'none' })
  t.same(parseContainerId('0::/\n'), { kind: 'none' }, 'a private cgroup namespace shows only /')
  t.same(parseContainerId(`0::/docker/${CONTAINER_ID.toUpperCase()}\n`), { kind: 'none' }, 'ids are lowercase hex')
  t.same(parseContainerId(`0::/docker/${CONTAINER_ID}0\n`), { kind: 'none' }, 'not 64 digits')
  t.same(parseContainerId(`12:memory:/docker/${CONTAINER_ID}\n11:pids:/docker/${OTHER_ID}\n`),
    { kind: 'ambiguous', ids: [CONTAINER_ID, OTHER_ID] })
})

// No container runtime runs here: a stand-in /proc/<pid>/cgroup says the process is in a container.
void t.test('container id – attestation reports docker:container_id, with no Docker configured', async t => {
  const inContainer = fakeProc(t, { cgroup: `0::/system.slice/docker-${CONTAINER_ID}.scope\n` })
  const selectors = (await new WorkloadAttestor({ procRoot: inContainer }).attest({ pid: FAKE_PID, uid: 0, gid: 0 })).map(formatSelector)
  t.ok(selectors.includes(`docker:container_id:${CONTAINER_ID}`))
  t.ok(selectors.includes('unix:uid:1234'), 'with the unix selectors')
  const outside = fakeProc(t)
  const plain = (await new WorkloadAttestor({ procRoot: outside }).attest({ pid: FAKE_PID, uid: 0, gid: 0 })).map(formatSelector)
  t.notOk(plain.some(text => text.startsWith('docker:')), 'no docker selectors outside a container')
})
