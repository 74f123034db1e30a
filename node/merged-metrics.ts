/**
 * The node proxy's /metrics: the apps' registries (each labelled app="<name>" by default) and the node's own, as one
 * Prometheus text exposition. prom-client's Registry.merge refuses two registries with the same metric names, and
 * the text format wants all samples of a metric under one HELP/TYPE header, so the texts are regrouped by metric.
 */
import type { Registry } from 'prom-client'

/** One exposition from several registries whose metrics may share names (the first registry's HELP/TYPE win). */
export async function mergedMetricsText (registries: readonly Registry[]): Promise<string> {
  const headers = new Map<string, string[]>()
  const samples = new Map<string, string[]>()
  for (const text of await Promise.all(registries.map(async registry => await registry.metrics()))) {
    for (const block of text.split('\n\n')) {
      const lines = block.split('\n').filter(line => line !== '')
      const name = /^# HELP (\S+)/.exec(lines[0] ?? '')?.[1]
      if (name === undefined) continue
      if (!headers.has(name)) headers.set(name, lines.filter(line => line.startsWith('#')))
      samples.set(name, [...(samples.get(name) ?? []), ...lines.filter(line => !line.startsWith('#'))])
    }
  }
  return [...headers].map(([name, header]) => [...header, ...(samples.get(name) ?? [])].join('\n') + '\n').join('\n')
}
