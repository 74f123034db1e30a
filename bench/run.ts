/**
 * `npm run bench`: runs the benchmarks in bench/ and prints their results.
 * Micro-benchmarks of the SPIFFE primitives, the policy engine and the agent; HTTP/1.1 parsing, the sidecar's against
 * llhttp's; the agent's stream fan-out; and the sidecar pair side by side with haproxy, nginx and ghostunnel on the
 * same mTLS hops (bench/proxy/, results in bench/out/results.md and a chart beside it; CHAPERONE_BENCH_UPDATE=1
 * replaces the committed bench/results.md and results.svg); then node mode (bench/node/: one node proxy serving 1, 10
 * and 50 app namespaces, and node proxies side by side with a sidecar pair on the same hops; root only), whose section
 * it adds to that results.md.
 */
import { cpus } from 'node:os'
import { benchSpiffeId } from './micro/spiffe-id'
import { benchX509Svid } from './micro/x509-svid'
import { benchEntryStore } from './micro/entry-store'
import { benchSvidMint } from './micro/svid-mint'
import { benchPolicyDecide } from './micro/policy-decide'
import { benchAgentStreams } from './agent-streams'
import { benchHttp1Parse } from './http1-parse'
import { benchProxies } from './proxy/run'
import { benchNodeMode } from './node/run'
import { formatRate } from './measure'
import type { Rate } from './measure'

const BENCHMARKS: Array<() => Rate[] | Promise<Rate[]>> = [benchSpiffeId, benchX509Svid, benchEntryStore, benchSvidMint, benchPolicyDecide]

async function main (): Promise<void> {
  console.log(`Chaperone micro-benchmarks — node ${process.version}, ${cpus()[0]?.model ?? 'unknown cpu'}, one core`)
  console.log('median of 5 rounds\n')
  for (const bench of BENCHMARKS) {
    for (const rate of await bench()) console.log(formatRate(rate))
  }
  for (const line of benchHttp1Parse()) console.log(line)
  for (const line of await benchAgentStreams()) console.log(line)
  // Installs wrk, haproxy and nginx if missing (as root); builds ghostunnel with Go once, or leaves its path out.
  for (const line of await benchProxies()) console.log(line)
  // Network namespaces on two devices: root only, skipped with the reason otherwise.
  for (const line of await benchNodeMode()) console.log(line)
}

void main()
