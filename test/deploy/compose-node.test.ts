import t from 'tap'
import { dirname, join } from 'node:path'
import { loadAgentConfig } from '../../agent/config'
import { loadNodeConfig } from '../../node/config'
import { ROOT, entriesSelecting, mountOf, mounts, namedVolumeAt, readCompose, registeredEntries } from '../helpers/compose-files'
import type { Service } from '../helpers/compose-files'

// The node-mode deployment (docker-compose.node.yml, deploy/node/), checked in seconds: apps carry nothing but the
// network and a label, the node proxy has exactly the capabilities and mounts it needs, its configuration and the
// agent's agree with the compose file and with each other, and each container's labels earn exactly its own entry.
// `npm run test:deploy` (test/deploy/live/node-mode.ts) runs the same file on a real Docker engine.

const compose = readCompose('docker-compose.node.yml')
const sidecarCompose = readCompose('docker-compose.yml')
const { agent, register, node } = compose.services
const apps = Object.entries(compose.services).filter(([, s]) => s.build === undefined)
const configPath = (service: Service): string => service.command?.[service.command.indexOf('-c') + 1] ?? ''
/** The host file mounted at `target` in the service. */
const hostFileAt = (service: Service, target: string): string => join(ROOT, mounts(service).find(m => m.target === target)?.source ?? '')
const nodeConfig = loadNodeConfig(hostFileAt(node, configPath(node)))
const agentConfig = loadAgentConfig(hostFileAt(agent, configPath(agent)))
/** The entry the register service adds from its arguments: the node proxy's. */
const nodeEntry = { id: register.command?.[0] ?? '', selectors: register.command?.slice(1) ?? [] }
const entries = [...registeredEntries(), nodeEntry]

void t.test('deploy node mode – the apps carry only proxy-redirect and a label', async t => {
  t.equal(compose.networks['proxy-redirect']?.external, true, 'proxy-redirect is external: the operator creates it')
  t.ok(apps.length >= 2, 'two sample apps')
  for (const [name, app] of apps) {
    t.same(app.networks, ['proxy-redirect'], `${name} is on proxy-redirect`)
    t.ok(app.labels?.[nodeConfig.docker?.label ?? ''] !== undefined, `${name} carries the label the node proxy serves (${nodeConfig.docker?.label ?? 'none'})`)
    for (const key of ['network_mode', 'cap_add', 'pid', 'user', 'volumes', 'ports', 'expose'] as const) t.equal(app[key], undefined, `${name} has no ${key}`)
    t.same(app.depends_on?.node, { condition: 'service_healthy' }, `${name} starts once the node proxy runs: the guard is on the bridge before its first packet`)
  }
  t.equal(Object.keys(compose.services).filter(name => name.startsWith('sidecar')).length, 0, 'no sidecar')
})

void t.test('deploy node mode – the node proxy: the host\'s network and PIDs, root with exactly SYS_ADMIN, NET_ADMIN and SYS_PTRACE', async t => {
  t.same(node.command?.slice(0, 2), ['node', 'run'], 'chaperone node run')
  t.equal(node.network_mode, 'host', 'in the host\'s network namespace, where the bridge and its guard are')
  t.equal(node.pid, 'host', 'in the host\'s PID namespace: Docker\'s State.Pid is its PID')
  t.equal(node.user, '0:0', 'root')
  t.same(node.cap_drop, ['ALL'], 'every capability dropped …')
  t.same([...node.cap_add ?? []].sort(), ['NET_ADMIN', 'SYS_ADMIN', 'SYS_PTRACE'], '… but these')
  t.same(node.healthcheck?.test, ['CMD', 'chaperone', 'proxy', 'wait', '--admin', `${nodeConfig.admin.host}:${nodeConfig.admin.port}`, '--timeout', '2'], 'healthy once its apps are served (its /ready)')
  t.equal(nodeConfig.docker?.network, 'proxy-redirect', 'it serves proxy-redirect\'s containers')
  t.ok(nodeConfig.docker !== undefined && mountOf(node, nodeConfig.docker.socket)?.readOnly, 'the Docker socket is mounted, read-only')
  const policyMount = mounts(node).find(m => nodeConfig.policy.startsWith(`${m.target}/`))
  t.ok(policyMount?.readOnly === true && policyMount.source === './deploy/policy', 'the sidecars\' policy directory, read-only')
  t.same(nodeConfig.apps, [], 'no app configured: Docker says which')
})

void t.test('deploy node mode – the Delegated Identity API: a socket of its own, shared by the agent and the node proxy only', async t => {
  const socket = agentConfig.delegatedIdentitySocket ?? ''
  t.equal(nodeConfig.delegatedIdentityApi, `unix://${socket}`, 'the node proxy asks the agent\'s delegated identity socket')
  const volume = namedVolumeAt(agent, dirname(socket))
  t.ok(volume !== undefined && !volume.readOnly, 'the agent makes it on a named volume')
  t.same(namedVolumeAt(node, dirname(socket)), { ...volume, readOnly: true }, 'the node proxy mounts that volume read-only')
  const admin = namedVolumeAt(agent, dirname(agentConfig.adminSocket))
  for (const [name, service] of Object.entries(compose.services)) {
    if (name !== 'agent' && name !== 'node') t.equal(mountOf(service, volume?.source ?? ''), undefined, `${name} never sees it`)
    t.equal(mountOf(service, admin?.source ?? '') !== undefined, name === 'agent' || name === 'register', `${name} ${name === 'agent' || name === 'register' ? 'mounts' : 'never sees'} the admin socket`)
  }
  t.same(agentConfig.authorizedDelegates, [nodeEntry.id], 'the only delegate is the node proxy\'s ID')
})

void t.test('deploy node mode – each container\'s labels earn exactly its own entry; the node proxy\'s, the delegate\'s', async t => {
  t.same(entriesSelecting(entries, node).map(e => e.id), [nodeEntry.id], 'the node proxy gets the delegate\'s ID and no other')
  for (const [name, app] of apps) {
    t.same(entriesSelecting(entries, app).map(e => e.id), [`spiffe://${agentConfig.trustDomain.name}/${name}`], `${name} gets its ID and no other`)
  }
  t.same(register.entrypoint, sidecarCompose.services.register.entrypoint, 'register runs deploy/register-entries.sh, as in docker-compose.yml')
})

void t.test('deploy node mode – the agent is docker-compose.yml\'s but for its configuration and the delegated socket', async t => {
  const without = (service: Service): Service => ({ ...service, volumes: undefined })
  t.same(without(agent), without(sidecarCompose.services.agent), 'the same service otherwise')
  t.equal(agentConfig.dockerSocket, '/var/run/docker.sock', 'docker:label selectors, as in deploy/agent.yaml')
  t.ok(mountOf(agent, agentConfig.dockerSocket ?? '')?.readOnly, 'the Docker socket, read-only')
})
