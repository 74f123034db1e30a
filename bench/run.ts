/**
 * `npm run bench`: runs the benchmarks in bench/ and prints their results.
 * Today: micro-benchmarks of the SPIFFE primitives and the agent, and the agent's stream fan-out. The side-by-side proxy benchmarks against
 * haproxy and nginx join with the benchmark issue.
 */
import { cpus } from 'node:os'
import { benchSpiffeId } from './micro/spiffe-id'
import { benchX509Svid } from './micro/x509-svid'
import { benchEntryStore } from './micro/entry-store'
import { benchSvidMint } from './micro/svid-mint'
import { benchPolicyDecide } from './micro/policy-decide'
import { benchAgentStreams } from './agent-streams'
import { formatRate } from './measure'
import type { Rate } from './measure'

const BENCHMARKS: Array<() => Rate[] | Promise<Rate[]>> = [benchSpiffeId, benchX509Svid, benchEntryStore, benchSvidMint, benchPolicyDecide]

async function main (): Promise<void> {
  console.log(`Chaperone micro-benchmarks — node ${process.version}, ${cpus()[0]?.model ?? 'unknown cpu'}, one core`)
  console.log('median of 5 rounds\n')
  for (const bench of BENCHMARKS) {
    for (const rate of await bench()) console.log(formatRate(rate))
  }
  for (const line of await benchAgentStreams()) console.log(line)
}

void main()
