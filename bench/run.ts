/**
 * `npm run bench`: runs the benchmarks in bench/ and prints their results.
 * Today: the micro-benchmarks of the SPIFFE primitives. The side-by-side proxy benchmarks join with the benchmark issue.
 */
import { cpus } from 'node:os'
import { benchSpiffeId } from './micro/spiffe-id'
import { benchX509Svid } from './micro/x509-svid'
import { formatRate } from './measure'

function main (): void {
  console.log(`Chaperone micro-benchmarks — node ${process.version}, ${cpus()[0]?.model ?? 'unknown cpu'}, one core`)
  console.log('median of 5 rounds of 0.5 s each\n')
  for (const bench of [benchSpiffeId, benchX509Svid]) {
    for (const rate of bench()) console.log(formatRate(rate))
  }
}

main()
