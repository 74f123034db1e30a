/**
 * Rules one sidecar can never use: a rule whose `ports` name none of the ports the sidecar's listeners serve never
 * decides a connection there. A rule's ports are the destination app's port on both sides: inbound a listener serves
 * its target's port (a transparent inbound listener every port), outbound its service port (transparent outbound
 * and HTTP proxies every port). cli/ and proxy/ turn a sidecar's configuration into these plain sets: policy/
 * knows nothing of listeners.
 */
import type { LoadedPolicy } from './document'
import type { PolicyProblem } from './errors'
import { matchesIdPattern, parseIdPattern } from './id-pattern'
import type { IdPattern } from './id-pattern'

/** The app ports a sidecar's listeners serve, by direction; `any` where a listener serves every port. */
export interface ServedPorts {
  readonly inbound: ReadonlySet<number> | 'any'
  readonly outbound: ReadonlySet<number> | 'any'
}

const SIDES = [
  { side: 'to', direction: 'inbound', serves: 'an inbound listener serves its target\'s port' },
  { side: 'from', direction: 'outbound', serves: 'an outbound listener serves its servicePort, by default its target\'s port' }
] as const

/**
 * A warning for each rule with `ports` whose `to` can match `spiffeId` while the inbound listeners serve none of
 * its ports, and each whose `from` can match it while the outbound listeners serve none. A direction without
 * listeners has nothing to miss: the rule is for other sidecars there.
 */
export function servedPortWarnings (policy: Pick<LoadedPolicy, 'document' | 'locate'>, spiffeId: string, served: ServedPorts): PolicyProblem[] {
  const warnings: PolicyProblem[] = []
  policy.document.rules.forEach((rule, index) => {
    const ports = rule.ports
    if (ports === undefined) return
    for (const { side, direction, serves } of SIDES) {
      const listened = served[direction]
      if (listened === 'any' || listened.size === 0 || ports.some(port => listened.has(port))) continue
      if (!rule[side].some(text => matchesIdPattern(parseIdPattern(text) as IdPattern, spiffeId))) continue
      const path = `/rules/${index}/ports`
      warnings.push({
        severity: 'warning',
        path,
        location: policy.locate(path),
        rule: rule.name,
        message: `never matches on the sidecar of ${spiffeId}: the rule lists ${portList(ports)}; its ${direction} listeners serve ${portList([...listened])} (${serves})`
      })
    }
  })
  return warnings
}

function portList (ports: readonly number[]): string {
  return `port${ports.length === 1 ? '' : 's'} ${[...ports].sort((a, b) => a - b).join(', ')}`
}
