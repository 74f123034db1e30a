import t from 'tap'
import { performance } from 'node:perf_hooks'
import { describeInput, judge, Tally } from '../../helpers/http1-differential'
import { generateCase } from '../../helpers/http1-gen/cases'
import { readWithLlhttp } from '../../helpers/llhttp-oracle'
import { SHAPE_CASES } from './differential-cases'
import { PLACES } from './differential-sweep'

// The sidecar's HTTP/1.1 reader held to llhttp, Node's own parser (DESIGN invariant 8): every message the sidecar
// reads, llhttp reads the same way and ends at the same byte; where llhttp stops, the sidecar stops; the sidecar may
// refuse more. `npm test` runs a fixed seed; `npm run fuzz` a random one and many more cases:
//   CHAPERONE_FUZZ_SEED=<n | random>  CHAPERONE_FUZZ_CASES=<n>  npx tap test/proxy/http1/differential.test.ts

const DEFAULT_SEED = 20261202
const DEFAULT_CASES = 100_000

function seedFromEnv (): number {
  const text = process.env.CHAPERONE_FUZZ_SEED
  if (text === undefined || text === '') return DEFAULT_SEED
  return text === 'random' ? Math.floor(Math.random() * 2 ** 32) : Number(text) >>> 0
}

const seed = seedFromEnv()
const cases = Number(process.env.CHAPERONE_FUZZ_CASES ?? DEFAULT_CASES)

void t.test(`http1 differential – ${cases} generated and mutated streams read as llhttp reads them (seed ${seed})`, async t => {
  const tally = new Tally()
  const started = performance.now()
  for (let index = 0; index < cases && tally.disagreements.length < 20; index++) {
    const generated = generateCase(seed, index)
    tally.add(seed, index, generated, judge(generated.input, generated.cuts, generated.boundaries))
  }
  const summary = tally.summary(performance.now() - started)
  console.error(`http1 differential, seed ${seed} (CHAPERONE_FUZZ_SEED=${seed} makes it again):\n${summary.join('\n')}`)
  t.same(tally.disagreements, [], 'no stream the sidecar reads differently from llhttp')
  t.same(tally.unreadValid, [], 'every valid stream is read whole, at the boundaries it was made with')
  t.equal(tally.cases, cases)
})

void t.test('http1 differential – hand-written smuggling shapes: what the sidecar does, and llhttp does not read otherwise', async t => {
  for (const { shape, expected, kind, text, methods } of SHAPE_CASES) {
    const input = { kind, bytes: Buffer.from(text, 'latin1'), methods: methods ?? [] }
    const { ours, verdict } = judge(input)
    const outcome = ours.outcome.kind === 'refused' ? 'refuses' : ours.outcome.kind === 'incomplete' ? 'waits' : 'reads'
    if (verdict.kind === 'disagree') t.fail(`${shape}: ${verdict.problem}\n${describeInput(input)}`)
    t.equal(outcome, expected, `${shape}: the sidecar ${expected}${ours.outcome.kind === 'refused' ? ` (${ours.outcome.reason})` : ''}`)
  }
})

void t.test('http1 differential – every byte, once and twice, at each place a parser decides on', async t => {
  let swept = 0
  for (const { name, kind, make } of PLACES) {
    for (let byte = 0; byte < 256; byte++) {
      for (const hole of [String.fromCharCode(byte), String.fromCharCode(byte, byte)]) {
        const input = { kind, bytes: Buffer.from(make(hole), 'latin1'), methods: [] }
        const { verdict } = judge(input)
        if (verdict.kind === 'disagree') t.fail(`${name}, ${JSON.stringify(hole)}: ${verdict.problem}\n${describeInput(input)}`)
        swept++
      }
    }
  }
  t.equal(swept, PLACES.length * 512)
})

void t.test('http1 differential – the oracle: hints make the llhttp reading faster, never different', async t => {
  let compared = 0
  for (let index = 0; index < 1000; index++) {
    const { input } = generateCase(seed, index)
    const hinted = readWithLlhttp(input, { hints: Array.from({ length: 4 }, (_, i) => Math.floor((i + 1) * input.bytes.length / 5)) })
    const bytewise = readWithLlhttp(input)
    if (JSON.stringify(hinted) !== JSON.stringify(bytewise)) t.fail(`case ${index}: hinted and byte-by-byte readings differ\n${describeInput(input)}`)
    compared++
  }
  t.equal(compared, 1000)
})
