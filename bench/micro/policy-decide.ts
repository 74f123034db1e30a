/**
 * Micro-benchmark: the policy engine's decision, the check on every connection (L4) and every request (HTTP).
 * One policy of 1,000 rules of mixed patterns over ~300 workloads in 3 trust domains. The engine caches each ID's
 * matching rules, so the warm cases reuse a pool of known peers; the cold case gives a source ID never seen before
 * on every decision (parse, trie walk, cache insert and eviction), which is what a flood of new peers costs.
 */
import { compilePolicy } from '../../policy/engine'
import type { PolicyRequest } from '../../policy/engine'
import type { PolicyRule } from '../../policy/document'
import { policyFromValue } from '../../policy/document'
import { policyWarnings } from '../../policy/lint'
import { parseSpiffeId } from '../../spiffe/id'
import { measure } from '../measure'
import { seededRandom } from '../seeded-random'
import type { Rate } from '../measure'

const RULES = 1000
const REQUESTS = 1000
/** Far more than the engine's per-ID cache holds (4,096), so every cold decision misses it. */
const COLD_REQUESTS = 100_000

/** Trust domains with their vendor and app counts: 200 + 50 + 50 = 300 workloads. */
const DOMAINS = [
  { name: 'plant.example', vendors: 20, apps: 10 },
  { name: 'lab.example', vendors: 10, apps: 5 },
  { name: 'partner.example', vendors: 10, apps: 5 }
]
const PORTS = [80, 443, 8080, 8443, 502]
const METHODS = ['GET', 'POST', 'PUT', 'DELETE']
const PATH_PATTERNS = ['/api/*', '/api/v1/status', '/metrics', '/admin/*', '/v2*', '/health']
const REQUEST_PATHS = ['/api/v1/status', '/api/v1/items/42', '/metrics', '/admin/users', '/v2/orders', '/health', '/']

const WORKLOADS = DOMAINS.flatMap(d => Array.from({ length: d.vendors * d.apps }, (_, n) =>
  `spiffe://${d.name}/vendor-${Math.floor(n / d.apps)}/app-${n % d.apps}`))

function benchPolicy (random: () => number): object {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]
  const domain = (): (typeof DOMAINS)[number] => random() < 0.7 ? DOMAINS[0] : pick(DOMAINS.slice(1))
  const vendor = (d: (typeof DOMAINS)[number]): string => `vendor-${Math.floor(random() * d.vendors)}`
  const app = (d: (typeof DOMAINS)[number]): string => `app-${Math.floor(random() * d.apps)}`
  const pattern = (): string => {
    const roll = random()
    const d = domain()
    if (roll < 0.45) return `spiffe://${d.name}/${vendor(d)}/${app(d)}` // exact workload
    if (roll < 0.65) return `spiffe://${d.name}/${vendor(d)}/*` // a vendor's apps
    if (roll < 0.8) return `spiffe://${d.name}/${vendor(d)}/**` // a vendor's apps, any depth
    if (roll < 0.9) return `spiffe://${d.name}/*/${app(d)}` // one app of every vendor
    if (roll < 0.96) return `spiffe://${d.name}/**` // a whole trust domain
    return `spiffe://${d.name}/*/*`
  }
  const patterns = (): string[] => [...new Set(Array.from({ length: random() < 0.8 ? 1 : 2 }, pattern))]
  const rules: PolicyRule[] = []
  for (let i = 0; i < RULES; i++) {
    const any = i % 250 === 249 // a few rules for any peer
    rules.push({
      name: `rule-${i}`,
      from: any ? ['*'] : patterns(),
      to: patterns(),
      ...(random() < 0.4 ? { ports: [...new Set([pick(PORTS), pick(PORTS)])] } : {}),
      ...(random() < 0.3 ? { http: random() < 0.5 ? { methods: [pick(METHODS)], paths: [...new Set([pick(PATH_PATTERNS), pick(PATH_PATTERNS)])] } : { paths: [pick(PATH_PATTERNS)] } } : {}),
      action: random() < 0.8 ? 'allow' : 'deny',
      mode: random() < 0.03 ? 'dry-run' : 'enforce'
    })
  }
  return { version: 1, defaultAction: 'deny', rules }
}

export function benchPolicyDecide (): Rate[] {
  const random = seededRandom(20260401)
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]
  const document = benchPolicy(random)
  const { decide } = compilePolicy(document)
  const l4: PolicyRequest[] = Array.from({ length: REQUESTS }, () => ({ from: pick(WORKLOADS), to: pick(WORKLOADS), port: pick(PORTS) }))
  const http: PolicyRequest[] = Array.from({ length: REQUESTS }, () => ({
    from: pick(WORKLOADS), to: pick(WORKLOADS), port: pick(PORTS), http: { method: pick(METHODS), path: pick(REQUEST_PATHS) }
  }))
  const parsed: PolicyRequest[] = l4.map(r => ({ ...r, from: parseSpiffeId(r.from as string), to: parseSpiffeId(r.to as string) }))
  const cold: PolicyRequest[] = Array.from({ length: COLD_REQUESTS }, (_, i) => ({ from: `spiffe://plant.example/new/${i}`, to: pick(WORKLOADS), port: pick(PORTS) }))
  // measure() restarts its counter every round, so the cold case walks its pool with a counter of its own.
  let next = 0
  return [
    measure('policy decide, 1,000 rules, L4, 1,000 distinct requests', i => decide(l4[i % REQUESTS])),
    measure('policy decide, 1,000 rules, HTTP, 1,000 distinct requests', i => decide(http[i % REQUESTS])),
    measure('policy decide, 1,000 rules, L4, IDs as SpiffeId objects', i => decide(parsed[i % REQUESTS])),
    measure('policy decide, 1,000 rules, L4, new source ID every time (cold)', () => decide(cold[next++ % COLD_REQUESTS])),
    // What a reload costs: check and compile; and the lint warnings the watcher logs (pairwise shadow checks).
    measure('policy check + compile, 1,000 rules (reloads)', () => compilePolicy(document), { rounds: 3, roundMs: 1000 }),
    measure('policy lint warnings, 1,000 rules', () => policyWarnings(policyFromValue(document)), { rounds: 3, roundMs: 1000 })
  ]
}
