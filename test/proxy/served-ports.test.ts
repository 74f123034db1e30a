import t from 'tap'
import { loadSidecarConfig } from '../../proxy/config'
import { servedPorts } from '../../proxy/served-ports'
import { TD, startMesh } from '../helpers/mesh'

// What a sidecar's listeners serve, as the policy's served-ports check takes it, and the `policy_warning` lines the
// running sidecar logs for rules its listeners never serve: at start and after each successful reload.

void t.test('served ports – fixed listeners\' service ports by direction; transparent listeners and HTTP proxies serve any', async t => {
  const fixed = loadSidecarConfig(undefined, { policy: 'p.yaml', inbound: ['127.0.0.1:8443=127.0.0.1:8080'], outbound: ['127.0.0.1:9001=10.0.0.2:8443,port=8080', '127.0.0.1:9002=10.0.0.3:5432'] })
  t.same(servedPorts(fixed.listeners), { inbound: new Set([8080]), outbound: new Set([8080, 5432]) })
  const open = loadSidecarConfig(undefined, { policy: 'p.yaml', inbound: ['127.0.0.1:8443=127.0.0.1:8080'], transparentInbound: 15006, httpProxy: ['127.0.0.1:3128'] })
  t.same(servedPorts(open.listeners), { inbound: 'any', outbound: 'any' })
  t.same(servedPorts(loadSidecarConfig(undefined, { policy: 'p.yaml', transparentOutbound: 15001 }).listeners), { inbound: new Set(), outbound: 'any' })
})

void t.test('served ports – the sidecar logs policy_warning for a rule its listeners never serve, at start and after a reload', async t => {
  const policy = (port: number): string => `version: 1\nrules:\n  - { name: client-calls, from: ["${TD}/client"], to: ["${TD}/server"], ports: [${port}], action: allow }\n`
  const mesh = await startMesh(policy(7))
  t.teardown(mesh.close)
  await mesh.register(`${TD}/client`)
  const client = await mesh.startSidecar(`${TD}/client`, { outbound: [`127.0.0.1:0=127.0.0.1:8443@${TD}/server,port=8080`] })
  const warnings = (): unknown[] => client.logs.filter(line => line.event === 'policy_warning').map(line => ({ file: line.file, warning: line.warning }))
  const expected = (port: number): object => ({
    file: mesh.policyFile,
    warning: `${mesh.policyFile}:3:114: warning: rule "client-calls": ports: never matches on the sidecar of ${TD}/client: the rule lists port ${port}; ` +
      'its outbound listeners serve port 8080 (an outbound listener serves its servicePort, by default its target\'s port)'
  })
  t.same(warnings(), [expected(7)], 'at start')
  mesh.writePolicy(policy(8080))
  t.equal(client.sidecar.services.policy.reload().result, 'ok')
  t.same(warnings(), [expected(7)], 'a policy whose rule the listener serves: nothing more')
  mesh.writePolicy(policy(9))
  t.equal(client.sidecar.services.policy.reload().result, 'ok')
  t.equal(client.sidecar.services.policy.reload().result, 'unchanged')
  t.same(warnings(), [expected(7), expected(9)], 'after the reload that brought it, once (not again when unchanged)')
})
