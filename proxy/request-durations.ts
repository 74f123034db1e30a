/**
 * chaperone_http_request_duration_seconds: a Prometheus histogram of HTTP-mode request durations by listener and
 * status code, kept in plain numbers. Every HTTP request is observed on the data path; prom-client's own Histogram
 * builds, validates and hashes a label object on every observation, about 2 % of a sidecar's CPU at full load
 * (bench/tuning.md). Here an observation is two map lookups and a bucket count; the exposition, the same text
 * prom-client's Histogram writes, is built only when the metrics are read.
 */
import type { Metric } from 'prom-client'

type Labels = Readonly<Record<string, string | number>>

interface Series { readonly labels: { readonly listener: string, readonly code: string }, readonly counts: number[], sum: number, count: number }

/** One line of the exposition: `labels` are the line's own (`le`), `sharedLabels` the series'. */
interface ExpositionValue { readonly metricName: string, readonly labels: Labels, readonly sharedLabels: Labels, readonly value: number }

interface Exposition<V> { readonly name: string, readonly help: string, readonly type: 'histogram', readonly aggregator: 'sum', readonly values: V[] }

export class RequestDurations {
  readonly name: string
  readonly help: string
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  readonly #bounds: readonly number[]
  /** By listener, then by status code. */
  readonly #series = new Map<string, Map<number, Series>>()

  constructor (name: string, help: string, bounds: readonly number[]) {
    this.name = name
    this.help = help
    this.#bounds = bounds
  }

  /** What prom-client's registry takes: it reads a metric only through the methods below. */
  get metric (): Metric {
    return this as unknown as Metric
  }

  observe (listener: string, status: number, seconds: number): void {
    let byStatus = this.#series.get(listener)
    if (byStatus === undefined) this.#series.set(listener, byStatus = new Map<number, Series>())
    let series = byStatus.get(status)
    if (series === undefined) {
      series = { labels: { listener, code: String(status) }, counts: new Array<number>(this.#bounds.length).fill(0), sum: 0, count: 0 }
      byStatus.set(status, series)
    }
    const bounds = this.#bounds
    for (let i = 0; i < bounds.length; i++) {
      if (seconds <= bounds[i]) {
        series.counts[i]++
        break
      }
    }
    series.sum += seconds
    series.count++
  }

  /** The exposition as the registry writes it: each series' buckets (cumulative, `+Inf` last), then its sum and count. */
  getForPromString (): Promise<Exposition<ExpositionValue>> {
    return Promise.resolve(this.#exposition())
  }

  #exposition (): Exposition<ExpositionValue> {
    const values: ExpositionValue[] = []
    const line = (suffix: string, labels: Labels, sharedLabels: Labels, value: number): void => {
      values.push({ metricName: `${this.name}_${suffix}`, labels, sharedLabels, value })
    }
    for (const byStatus of this.#series.values()) {
      for (const { labels, counts, sum, count } of byStatus.values()) {
        let cumulative = 0
        this.#bounds.forEach((le, i) => {
          cumulative += counts[i]
          line('bucket', { le }, labels, cumulative)
        })
        line('bucket', { le: '+Inf' }, labels, count)
        line('sum', {}, labels, sum)
        line('count', {}, labels, count)
      }
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }

  /** As prom-client's `get()`: each value's labels are the series' and its own together. */
  async get (): Promise<Exposition<{ metricName: string, labels: Labels, value: number }>> {
    const exposition = await this.getForPromString()
    return { ...exposition, values: exposition.values.map(({ metricName, labels, sharedLabels, value }) => ({ metricName, labels: { ...labels, ...sharedLabels }, value })) }
  }

  reset (): void {
    this.#series.clear()
  }
}
