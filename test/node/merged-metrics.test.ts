import t from 'tap'
import { Counter, Registry } from 'prom-client'
import { mergedMetricsText } from '../../node/merged-metrics'

// The node's /metrics: apps' registries share metric names (each labelled app=…); the exposition must hold each
// metric once, with every app's samples under it, as Prometheus's text format requires.

function appRegistry (app: string, count: number): Registry {
  const registry = new Registry()
  registry.setDefaultLabels({ app })
  new Counter({ name: 'chaperone_connections_total', help: 'Connections', labelNames: ['listener'], registers: [registry] }).inc({ listener: 'inbound' }, count)
  return registry
}

void t.test('merged metrics – one header per metric, every app\'s samples under it', async t => {
  const own = new Registry()
  new Counter({ name: 'chaperone_policy_reloads_total', help: 'Reloads', registers: [own] }).inc()
  const text = await mergedMetricsText([own, appRegistry('app-a', 2), appRegistry('app-b', 3)])
  t.equal(text.match(/# HELP chaperone_connections_total /g)?.length, 1, 'one HELP')
  t.equal(text.match(/# TYPE chaperone_connections_total counter/g)?.length, 1, 'one TYPE')
  t.match(text, /# TYPE chaperone_connections_total counter\nchaperone_connections_total\{listener="inbound",app="app-a"\} 2\nchaperone_connections_total\{listener="inbound",app="app-b"\} 3\n/)
  t.match(text, /chaperone_policy_reloads_total 1\n/)
  t.throws(() => Registry.merge([appRegistry('x', 1), appRegistry('y', 1)]), 'prom-client itself refuses this merge: the reason the texts are regrouped')
})
