/**
 * Choosing the device's downstream entry among those SPIRE authorizes to its agent (downstream-entry.ts): the one
 * with `downstream` parented on the agent ID or on an alias; descendants of other entries do not count. None is
 * ERR_DOWNSTREAM_ENTRY_MISSING with the command that registers one; more than one is ERR_DOWNSTREAM_ENTRY_AMBIGUOUS
 * naming them.
 */
import t from 'tap'
import { chooseDownstreamEntry } from '../../../agent/upstream'
import type { AuthorizedEntry } from '../../../agent/upstream'
import { parseSpiffeId } from '../../../spiffe/id'

const AGENT = 'spiffe://fleet.example/spire/agent/x509pop/0123abcd'
const agentId = parseSpiffeId(AGENT)
const entry = (id: string, spiffeId: string, parentId: string, downstream: boolean): AuthorizedEntry => ({ id, spiffeId, parentId, downstream })
const device = entry('e-device', 'spiffe://fleet.example/device/SN-1', AGENT, true)
const workload = entry('e-app', 'spiffe://fleet.example/app', AGENT, false)

void t.test('downstream entry – the one parented on the agent is chosen', async t => {
  t.equal(chooseDownstreamEntry([workload, device], agentId), device)
})

void t.test('downstream entry – one parented on an alias (a parent no authorized entry is) is chosen', async t => {
  const viaAlias = entry('e-alias', 'spiffe://fleet.example/device/SN-2', 'spiffe://fleet.example/devices/line-3', true)
  t.equal(chooseDownstreamEntry([workload, viaAlias], agentId), viaAlias)
})

void t.test('downstream entry – a downstream descendant of another authorized entry is not the device\'s', async t => {
  const nested = entry('e-nested', 'spiffe://fleet.example/device/SN-1/inner', device.spiffeId, true)
  t.equal(chooseDownstreamEntry([nested, device], agentId), device)
  t.throws(() => chooseDownstreamEntry([workload, entry('e-under-app', 'spiffe://fleet.example/app/ds', workload.spiffeId, true)], agentId), { code: 'ERR_DOWNSTREAM_ENTRY_MISSING' })
})

void t.test('downstream entry – none: the error says how to register the device and names the entries without -downstream', async t => {
  t.throws(() => chooseDownstreamEntry([], agentId), {
    code: 'ERR_DOWNSTREAM_ENTRY_MISSING',
    message: `no downstream entry is authorized to agent ${AGENT}; register the device: spire-server entry create -parentID ${AGENT} -spiffeID spiffe://fleet.example/<the device's path> -selector <type:value> -downstream`
  })
  t.throws(() => chooseDownstreamEntry([workload], agentId), {
    code: 'ERR_DOWNSTREAM_ENTRY_MISSING',
    message: `no downstream entry is authorized to agent ${AGENT} (authorized without -downstream: spiffe://fleet.example/app (entry e-app, parent ${AGENT})); register the device`
  })
})

void t.test('downstream entry – more than one: the error names each', async t => {
  const second = entry('e-second', 'spiffe://fleet.example/device/SN-1b', AGENT, true)
  t.throws(() => chooseDownstreamEntry([device, workload, second], agentId), {
    code: 'ERR_DOWNSTREAM_ENTRY_AMBIGUOUS',
    message: /^2 downstream entries are authorized to agent .*: spiffe:\/\/fleet\.example\/device\/SN-1 \(entry e-device, .*\), spiffe:\/\/fleet\.example\/device\/SN-1b \(entry e-second, .*\); delete all but the device's$/
  })
})
