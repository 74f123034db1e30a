/**
 * The agent's Prometheus endpoint (`metrics:`), read over real HTTP: the CA's issuing budget on every agent, the
 * upstream's state on a device, the fleet's devices and refusals on a fleet agent; what it refuses (other paths and
 * methods); and the configuration errors (a bad host:port, a port in use).
 */
import t from 'tap'
import type { Test } from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { Registry } from 'prom-client'
import { Agent } from '../../../agent/agent'
import { loadAgentConfig } from '../../../agent/config'
import { AgentMetrics } from '../../../agent/metrics/agent-metrics'
import { MetricsServer } from '../../../agent/metrics/metrics-server'
import { freePort } from '../../../bench/proxy/processes'
import { TestManufacturer } from '../../../certs-test'
import { startFleetStand } from '../fleet/fixtures/fleet-stand'

interface Answer { status: number, body: string }

async function get (address: string, path: string, method = 'GET'): Promise<Answer> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))]
  return await new Promise((resolve, reject) => {
    const req = request({ host, port, path, method }, res => {
      let body = ''
      res.on('data', (chunk: Buffer) => { body += chunk.toString() })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body }) })
    })
    req.on('error', reject)
    req.end()
  })
}

/** The value of `name{labels}` in a Prometheus text exposition; undefined when absent. */
function sample (text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find(l => l.startsWith(`${name}${labels} `))
  return line === undefined ? undefined : Number(line.split(' ')[1])
}

async function agentWithMetrics (t: Test): Promise<{ agent: Agent, address: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-metrics-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const address = `127.0.0.1:${await freePort()}`
  writeFileSync(join(dir, 'agent.yaml'), [
    'trustDomain: metrics.example', `dataDir: ${join(dir, 'data')}`, `socket: ${join(dir, 'w.sock')}`, `adminSocket: ${join(dir, 'a.sock')}`,
    `serverSocket: ${join(dir, 's', 'api.sock')}`, `metrics: ${address}`, ''
  ].join('\n'))
  const agent = await Agent.start(loadAgentConfig(join(dir, 'agent.yaml')), pino({ level: 'silent' }))
  t.teardown(async () => { await agent.stop() })
  return { agent, address }
}

void t.test('metrics – an agent serves its CA\'s issuing budget at /metrics, and nothing else', async t => {
  const { agent, address } = await agentWithMetrics(t)
  t.equal(agent.metrics?.address, address)
  const scraped = await get(address, '/metrics')
  t.equal(scraped.status, 200)
  t.equal(sample(scraped.body, 'chaperone_agent_ca_issues_until_timestamp_seconds'), Math.floor(agent.ca.status().issuesUntil.getTime() / 1000), 'until when the CA issues')
  t.notMatch(scraped.body, /chaperone_agent_upstream_up|chaperone_fleet_/, 'no device or fleet metrics without those roles')
  t.match(await get(address, '/other'), { status: 404, body: /"paths":\["\/metrics"\]/ })
  t.match(await get(address, '/metrics', 'POST'), { status: 405 })
  t.match(await get(address, '/metrics', 'HEAD'), { status: 200, body: '' })
})

void t.test('metrics – a fleet agent counts its devices and refusals; a device says whether its upstream answers', async t => {
  const fleet = await startFleetStand(t)
  const metrics = await MetricsServer.start({
    host: '127.0.0.1',
    port: await freePort(),
    registry: new AgentMetrics({ ca: fleet.agent.ca, store: fleet.agent.store, ...(fleet.agent.fleet === undefined ? {} : { fleet: fleet.agent.fleet }) }).registry,
    logger: pino({ level: 'silent' })
  })
  t.teardown(async () => { await metrics.stop() })
  const birth = fleet.maker.issueBirthCert('SN-M-0001')
  await fleet.startDevice(birth, `${await fleet.register(birth)}/app`)
  await fleet.startDevice(new TestManufacturer().issueBirthCert('SN-M-FOREIGN'), 'spiffe://fleet.example/nope').catch(() => undefined)
  const scraped = (await get(metrics.address, '/metrics')).body
  t.equal(sample(scraped, 'chaperone_fleet_attested_agents', '{state="active"}'), 1, 'one device attested')
  t.equal(sample(scraped, 'chaperone_fleet_attested_agents', '{state="banned"}'), 0)
  t.equal(sample(scraped, 'chaperone_fleet_attestations_refused_total', '{reason="x509pop"}'), 1, 'the foreign birth certificate refused, by reason')

  const device = new AgentMetrics({ ca: fleet.agent.ca, store: fleet.agent.store, bundlePoll: { lastContact: new Date(1_700_000_000_000), lostSince: undefined } })
  const up = await device.registry.metrics()
  t.equal(sample(up, 'chaperone_agent_upstream_up'), 1)
  t.equal(sample(up, 'chaperone_agent_upstream_last_contact_timestamp_seconds'), 1_700_000_000)
  const lost = await new AgentMetrics({ ca: fleet.agent.ca, store: fleet.agent.store, bundlePoll: { lastContact: new Date(), lostSince: new Date() } }).registry.metrics()
  t.equal(sample(lost, 'chaperone_agent_upstream_up'), 0, 'down while the upstream does not answer')
})

void t.test('metrics – refused settings: not host:port, a port in use', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-metrics-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  t.throws(() => loadAgentConfig(undefined, { trustDomain: 'metrics.example', metrics: '9464' }), { message: /--metrics.*must be host:port.*127\.0\.0\.1:9464/s })
  const busy = createServer()
  await new Promise<void>(resolve => busy.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { busy.close() })
  const port = (busy.address() as { port: number }).port
  await t.rejects(MetricsServer.start({ host: '127.0.0.1', port, registry: new Registry(), logger: pino({ level: 'silent' }) }),
    { code: 'ERR_METRICS_LISTEN', message: new RegExp(`cannot serve metrics on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`) })
})
