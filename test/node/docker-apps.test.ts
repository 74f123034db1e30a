/**
 * Docker discovery's reading of the Engine's answers (node/docker-apps.ts), on answers shaped as the Engine API
 * documents them (test/node/fixtures/docker/, written for these tests): the app network's bridge and subnets, the
 * containers' IDs, and each container's app — its namespace, PID and label settings — with bad labels reported,
 * naming the container and the label, and their fallback the more protective one.
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { APP_LABELS, containerIdsOf, dockerAppOf, dockerNetworkOf, parsePortsLabel } from '../../node/docker-apps'
import type { DockerNetwork } from '../../node/docker-apps'

/** The parts of a container's inspection these tests change. */
interface Inspect {
  Id: string
  State: Record<string, unknown>
  Config: { Labels: Record<string, string> | null }
  NetworkSettings: { Networks?: Record<string, { NetworkID: string }> }
}
interface Listed { Id: string, NetworkSettings: { Networks: Record<string, { NetworkID: string }> } }
const fixture = <T = unknown>(name: string): T => JSON.parse(readFileSync(join(__dirname, 'fixtures', 'docker', name), 'utf8')) as T
/** The labels of an inspection that has them. */
const labelsOf = (inspect: Inspect): Record<string, string> => inspect.Config.Labels ?? (inspect.Config.Labels = {})
const NODE_HTTP_PORTS = new Set([8080])

/** The container inspection with its labels (and anything else) replaced. */
function container (change: (inspect: Inspect) => void = () => undefined): Inspect {
  const inspect = fixture<Inspect>('container-inspect.json')
  change(inspect)
  return inspect
}
const network = dockerNetworkOf(fixture('network-inspect.json'))

void t.test('docker – a bridge network: its interface br-<12 of the ID>, its IPv4 subnets (IPv6 left out)', async t => {
  t.equal(network.name, 'proxy-redirect')
  t.equal(network.bridge, 'br-5e0c7b3a91d2', 'the bridge Docker made for it')
  t.same(network.subnets.map(s => s.text), ['172.23.0.0/16'], 'the IPv4 subnet only')
  const named = dockerNetworkOf(fixture('network-inspect-named-bridge.json'))
  t.equal(named.bridge, 'br-plant', 'com.docker.network.bridge.name when set')
  t.same(named.subnets.map(s => s.text), ['10.77.0.0/24'])
  const macvlan = dockerNetworkOf(fixture('network-inspect-macvlan.json'))
  t.equal(macvlan.bridge, undefined, 'no bridge to guard for another driver')
  t.equal(macvlan.driver, 'macvlan')
  t.same(macvlan.subnets.map(s => s.text), ['192.168.40.0/24'], 'its subnet is still an app network')
})

void t.test('docker – an answer of another shape is ERR_NODE_DOCKER_RESPONSE', async t => {
  for (const answer of [null, [], { Name: 'x' }, { Id: 'short', Name: 'x' }, { ...fixture<object>('network-inspect.json'), IPAM: { Config: [{ Subnet: '172.23.0.1/16' }] } }]) {
    t.throws(() => dockerNetworkOf(answer), { code: 'ERR_NODE_DOCKER_RESPONSE' }, JSON.stringify(answer).slice(0, 60))
  }
  t.throws(() => containerIdsOf({ message: 'page not found' }), { code: 'ERR_NODE_DOCKER_RESPONSE' }, 'a list that is not an array')
  t.throws(() => containerIdsOf([{ Id: '../../etc' }]), { code: 'ERR_NODE_DOCKER_RESPONSE' }, 'an ID that is not hexadecimal never reaches a request path')
  t.throws(() => dockerAppOf({ Name: '/x' }, network, NODE_HTTP_PORTS), { code: 'ERR_NODE_DOCKER_RESPONSE' }, 'an inspection without State')
})

void t.test('docker – the container list gives the IDs to inspect', async t => {
  t.same(containerIdsOf(fixture('containers-list.json')), [
    '9b1f0c2d3e4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c',
    '1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f'
  ])
  t.same(containerIdsOf([]), [], 'none')
})

void t.test('docker – a running container on the network is an app: its name, /proc/<pid>/ns/net, and its labels', async t => {
  const { app, problems } = dockerAppOf(container(), network, NODE_HTTP_PORTS)
  t.same(problems, [])
  t.equal(app?.name, 'billing', 'the container\'s name without the leading /')
  t.equal(app?.netns, '/proc/48213/ns/net', 'the namespace of State.Pid')
  t.equal(app?.pid, 48213, 'and that process is the one attested')
  t.equal(app?.spiffeId, 'spiffe://plant.example/billing', `${APP_LABELS.spiffeId}`)
  t.same([...app?.httpPorts ?? []], [8080, 9090], `${APP_LABELS.httpPorts}, spaces allowed`)
  t.same(app?.excludeInboundPorts, [9100], APP_LABELS.excludeInboundPorts)
  t.same(app?.excludeOutboundPorts, [5432, 6379], APP_LABELS.excludeOutboundPorts)
  t.ok(Object.isFrozen(app), 'frozen, as the configuration\'s apps')
})

void t.test('docker – without chaperone labels: the node\'s HTTP ports, no exclusions, the first identity issued', async t => {
  const { app, problems } = dockerAppOf(container(c => { c.Config.Labels = { 'io.chaperone.workload': 'billing' } }), network, NODE_HTTP_PORTS)
  t.same(problems, [])
  t.same([...app?.httpPorts ?? []], [8080])
  t.same([app?.excludeInboundPorts, app?.excludeOutboundPorts], [[], []])
  t.notOk(app !== undefined && 'spiffeId' in app, 'no spiffeId')
  const unlabelled = dockerAppOf(container(c => { c.Config.Labels = null }), network, new Set())
  t.same([...unlabelled.app?.httpPorts ?? []], [], 'labels null (as Docker sends when there are none)')
  t.same([...dockerAppOf(container(c => { labelsOf(c)[APP_LABELS.httpPorts] = '' }), network, NODE_HTTP_PORTS).app?.httpPorts ?? []], [], 'an empty label: no HTTP port')
})

void t.test('docker – a container not running, without a PID, or not on the network is no app', async t => {
  const cases: Array<[string, (c: Inspect) => void]> = [
    ['exited', c => { c.State = { ...c.State, Status: 'exited', Running: false, Pid: 0 } }],
    ['running without a PID (as Docker says mid-start)', c => { c.State.Pid = 0 }],
    ['on another network only', c => { c.NetworkSettings.Networks = { bridge: { NetworkID: 'f0e1d2c3b4a5' } } }],
    ['with no network', c => { c.NetworkSettings = {} }]
  ]
  for (const [why, change] of cases) t.same(dockerAppOf(container(change), network, NODE_HTTP_PORTS), { problems: [] }, why)
  const byId = container(c => { c.NetworkSettings.Networks = { 'an-alias-key': { NetworkID: network.id } } })
  t.ok(dockerAppOf(byId, network, NODE_HTTP_PORTS).app, 'attached under another key but the network\'s ID: an app')
})

void t.test('docker – a bad port label is reported and ignored: more traffic through the proxy, never less', async t => {
  for (const label of [APP_LABELS.httpPorts, APP_LABELS.excludeInboundPorts, APP_LABELS.excludeOutboundPorts]) {
    const { app, problems } = dockerAppOf(container(c => { labelsOf(c)[label] = '80a' }), network, NODE_HTTP_PORTS)
    t.equal(problems.length, 1, `${label}: one problem`)
    t.equal(problems[0]?.code, 'ERR_NODE_DOCKER_LABEL_INVALID')
    t.match(problems[0]?.message, `container billing: label ${label}="80a" is not a comma-separated list of ports`, 'naming the container, the label and its value')
    t.ok(app, 'the app is served')
    if (label === APP_LABELS.httpPorts) t.same([...app?.httpPorts ?? []], [8080], 'with the node\'s HTTP ports')
    else t.same(label === APP_LABELS.excludeInboundPorts ? app?.excludeInboundPorts : app?.excludeOutboundPorts, [], 'excluding nothing')
  }
})

void t.test('docker – a bad SPIFFE ID label leaves the container unserved, and says so', async t => {
  const { app, problems } = dockerAppOf(container(c => { labelsOf(c)[APP_LABELS.spiffeId] = 'https://plant.example/billing' }), network, NODE_HTTP_PORTS)
  t.equal(app, undefined, 'no app: another identity than the one named could be granted what it is not')
  t.equal(problems[0]?.code, 'ERR_NODE_DOCKER_LABEL_INVALID')
  t.match(problems[0]?.message, /container billing: label chaperone\.spiffe-id="https:\/\/plant\.example\/billing" is not a SPIFFE ID .*not served until it is fixed/)
})

void t.test('docker – port lists', async t => {
  t.same(parsePortsLabel('8080'), [8080])
  t.same(parsePortsLabel(' 8080 ,8081,8080 '), [8080, 8081], 'spaces around, duplicates once')
  t.same(parsePortsLabel(''), [])
  t.same(parsePortsLabel('1,65535'), [1, 65535], 'the bounds')
  for (const bad of ['0', '65536', '8080,', ',8080', '8080;8081', '80 81', '-1', '0x50', '008080', '1e3']) t.type(parsePortsLabel(bad), 'string', JSON.stringify(bad))
})

void t.test('docker – fixtures agree with each other', async t => {
  // The list's first container is the inspected one, on the network inspected: the IDs tie them together.
  const [first] = fixture<Listed[]>('containers-list.json')
  t.equal(first.Id, fixture<Inspect>('container-inspect.json').Id)
  t.equal(first.NetworkSettings.Networks['proxy-redirect']?.NetworkID, (network satisfies DockerNetwork).id)
})
