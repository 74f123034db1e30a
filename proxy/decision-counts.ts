/**
 * The policy's decisions, counted in plain numbers on the data path (HTTP mode decides every request) and added to
 * chaperone_connections_total when the metrics are read. prom-client's Counter builds, validates and hashes a label
 * object on every increment, about 1 % of a sidecar's CPU at full load in HTTP mode (bench/tuning.md); here an
 * increment is two map lookups.
 */
import type { Counter } from 'prom-client'

type DecisionLabel = 'listener' | 'direction' | 'decision' | 'rule'

interface Counts { readonly direction: string, allow: number, deny: number }

export class DecisionCounts {
  /** Not yet added to the counter: by listener, then by rule. */
  readonly #pending = new Map<string, Map<string, Counts>>()

  count (listener: string, direction: string, allow: boolean, rule: string): void {
    let byRule = this.#pending.get(listener)
    if (byRule === undefined) this.#pending.set(listener, byRule = new Map<string, Counts>())
    let counts = byRule.get(rule)
    if (counts === undefined) byRule.set(rule, counts = { direction, allow: 0, deny: 0 })
    if (allow) counts.allow++
    else counts.deny++
  }

  /** Adds what was counted since the last time to `counter`. */
  addTo (counter: Counter<DecisionLabel>): void {
    for (const [listener, byRule] of this.#pending) {
      for (const [rule, counts] of byRule) {
        if (counts.allow > 0) counter.inc({ listener, direction: counts.direction, decision: 'allow', rule }, counts.allow)
        if (counts.deny > 0) counter.inc({ listener, direction: counts.direction, decision: 'deny', rule }, counts.deny)
        counts.allow = 0
        counts.deny = 0
      }
    }
  }
}
