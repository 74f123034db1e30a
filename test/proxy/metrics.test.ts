import t from 'tap'
import { Counter, Histogram, Registry } from 'prom-client'
import { SidecarMetrics } from '../../proxy/metrics'

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
const OBSERVED: ReadonlyArray<[string, number, number]> = [
  ['inbound-1', 200, 0.0004], ['inbound-1', 200, 0.001], ['inbound-1', 200, 0.0011], ['inbound-1', 403, 0.03],
  ['outbound-1', 200, 12], ['inbound-1', 200, 0.7], ['outbound-1', 502, 0], ['inbound-1', 403, 2.5]
]

void t.test('the request-duration histogram writes what prom-client\'s Histogram writes for the same observations', async t => {
  const metrics = new SidecarMetrics()
  const registry = new Registry()
  const reference = new Histogram({ name: 'chaperone_http_request_duration_seconds', help: 'HTTP request durations in HTTP mode, by listener and status code', labelNames: ['listener', 'code'], buckets: BUCKETS, registers: [registry] })
  for (const [listener, status, seconds] of OBSERVED) {
    metrics.httpDuration.observe(listener, status, seconds)
    reference.observe({ listener, code: String(status) }, seconds)
  }
  const name = 'chaperone_http_request_duration_seconds'
  t.equal(await metrics.registry.getSingleMetricAsString(name), await registry.getSingleMetricAsString(name))
  const json = async (metric: { get: () => Promise<{ values: Array<{ metricName?: string, labels: object, value: number }> }> }): Promise<unknown> =>
    (await metric.get()).values.map(({ metricName, labels, value }) => ({ metricName, labels, value }))
  t.same(await json(metrics.httpDuration), await json(reference), 'the same values as JSON')
  t.match(await metrics.registry.metrics(), `${name}_bucket{le="0.0025",listener="inbound-1",code="200"} 3\n`)
  metrics.httpDuration.reset()
  t.equal(await metrics.registry.getSingleMetricAsString(name), `# HELP ${name} HTTP request durations in HTTP mode, by listener and status code\n# TYPE ${name} histogram`)
})

void t.test('decisions counted on the data path are in chaperone_connections_total when it is read, each once', async t => {
  const metrics = new SidecarMetrics()
  const registry = new Registry()
  const reference = new Counter({ name: 'chaperone_connections_total', help: 'x', labelNames: ['listener', 'direction', 'decision', 'rule'], registers: [registry] })
  const decisions: ReadonlyArray<[string, string, boolean, string]> = [
    ['inbound-1', 'inbound', true, 'a'], ['inbound-1', 'inbound', false, 'default'], ['inbound-1', 'inbound', true, 'a'],
    ['outbound-1', 'outbound', false, 'b'], ['inbound-1', 'inbound', false, 'a']
  ]
  const count = (list: typeof decisions): void => {
    for (const [listener, direction, allow, rule] of list) {
      metrics.countDecision(listener, direction, allow, rule)
      reference.inc({ listener, direction, decision: allow ? 'allow' : 'deny', rule })
    }
  }
  const values = async (counter: Counter): Promise<unknown> => (await counter.get()).values.map(({ labels, value }) => ({ labels, value })).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))
  count(decisions)
  t.same(await values(metrics.connections), await values(reference))
  t.same(await values(metrics.connections), await values(reference), 'read again: nothing is added twice')
  count(decisions.slice(1, 3))
  t.same(await values(metrics.connections), await values(reference), 'counted after a read: added at the next')
  t.match(await metrics.registry.metrics(), 'chaperone_connections_total{listener="inbound-1",direction="inbound",decision="allow",rule="a"} 3\n')
})
