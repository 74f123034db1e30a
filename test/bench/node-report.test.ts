import t from 'tap'
import { LOADS } from '../../bench/proxy/loads'
import { SECTION_BEGIN, SECTION_END, markdownTable, renderNodeSection, withNodeSection } from '../../bench/node/report'
import type { NodeReport } from '../../bench/node/report'
import { memoryLines, nodeSummaryLines } from '../../bench/node/summary'
import { nodeTargetLines, renderNodeTargets } from '../../bench/node/targets'
import { HOPS, STEPS, memory } from './node-results-fixture'

const report: NodeReport = {
  steps: STEPS,
  heap: { fromApps: 10, toApps: 50, classes: [{ name: 'SecureContext', bytesPerApp: 2048, countPerApp: 2 }, { name: 'a|b', bytesPerApp: 512, countPerApp: 1.5 }] },
  results: HOPS,
  proxies: [
    { name: 'node proxy of d1', carrier: 'node proxy', apps: 2, idle: memory(80), peakRssMb: 110.25, privateMb: 40 },
    { name: 'sidecar of s-client', carrier: 'sidecar pair', apps: 1, idle: memory(70, { privateMb: 25 }), peakRssMb: 90, privateMb: 30 }
  ],
  rounds: 3,
  loads: LOADS,
  minutes: 7.5,
  notes: ['a note']
}

void t.test('node report – a Markdown table: header, alignment, a row per row', async t => {
  t.same(markdownTable([['apps', 'numeric'], ['name', 'text']], [['1', 'x'], ['10', 'y']]), ['| apps | name |', '|---:|---|', '| 1 | x |', '| 10 | y |'])
})

void t.test('node report – the section opens and closes with its markers and holds every table', async t => {
  const section = renderNodeSection(report)
  t.ok(section.startsWith(`${SECTION_BEGIN}\n## Node mode`))
  t.ok(section.trimEnd().endsWith(SECTION_END))
  for (const heading of ['### Targets', '### What bounds the figures, and what would move them', '### Memory: one node proxy serving N app namespaces', '### Where one more app\'s heap goes (heap snapshots at 10 and 50 apps)',
    '### Per request: node proxies and a sidecar pair on the same hop', '### Proxy processes in the rounds', '### Method', '### Every round']) {
    t.ok(section.includes(`\n${heading}\n`), heading)
  }
  t.match(section, '| 50 | 129.0 MB | 159.0 MB | 84.0 MB | 18.0 / 45.0 MB | 2.0 MB | 62.0 MB | 5 | 4,000 | 1.50 |', 'the memory row of 50 apps')
  t.match(section, '| 1 | 80.0 MB | — |', 'no peak with one app')
  t.match(section, '| 50 | 1.00 MB | 1.00 MB | 0.50 MB | 0.00 MB | 1.00 MB | 2.58 MB | 3.18 MB |', 'per app at 50: marginal parts, then RSS(N)/N idle and peak')
  t.match(section, '| same device, HTTP, node proxy | 4,000 | 0.80× | 3.00 | 1.20× | 1.00 | 0.80× | 0 |', 'a hop and its ratios to the pair')
  t.match(section, '| `SecureContext` | 2.0 | 2.0 |', 'heap classes in KiB per app')
  t.match(section, '`a\\|b`', 'a pipe in a class name does not split the row')
  t.match(section, '| node proxy of d1 | 2 | 80.0 MB | 35.0 MB | 18.0 / 20.0 MB | 2.0 MB | 13.0 MB | 110.3 MB | 40.0 MB |')
  t.match(section, '50 apps with a sidecar each would hold about 50 × 25.0 MB + 45.0 MB = 1,295 MB before any load, where one node proxy serving them holds 129.0 MB.')
  t.match(section, '- **a note**')
  t.match(section, '| same device, HTTP, node proxy | 3,600 (0.80×) / 4,400 (0.80×) / 4,000 (0.80×) | 2.70 (1.20×) / 3.30 (1.20×) / 3.00 (1.20×) |',
    'every round, in order, node mode\'s against the pair\'s of the same round')
  t.match(section, '| same device, HTTP, sidecar pair | 4,500 / 5,500 / 5,000 |', 'the pair\'s rounds without ratios')
})

void t.test('node report – without heap snapshots there is no heap table', async t => {
  t.notMatch(renderNodeSection({ ...report, heap: undefined }), 'Where one more app')
})

void t.test('node report – the section replaces an earlier one in results.md, or is added at its end', async t => {
  const section = `${SECTION_BEGIN}\nnew\n${SECTION_END}\n`
  t.equal(withNodeSection('', section), section, 'a results.md of its own when there is none')
  t.equal(withNodeSection('# Proxy benchmark\n\ntext\n', section), `# Proxy benchmark\n\ntext\n\n${section}`)
  const earlier = `# Proxy benchmark\n\n${SECTION_BEGIN}\nold\n${SECTION_END}\n\n## After\n`
  t.equal(withNodeSection(earlier, section), `# Proxy benchmark\n\n${section}\n## After\n`, 'in place of the old one, what follows kept')
  t.equal(withNodeSection(withNodeSection(earlier, section), section), withNodeSection(earlier, section), 'idempotent')
})

void t.test('node targets – 50 apps within 150 MB, each hop within 10 % of the pair, reached or missed', async t => {
  const rows = renderNodeTargets(STEPS, HOPS).filter(line => line.startsWith('| ') && !line.startsWith('| figure'))
  t.equal(rows.length, 9, 'memory, then keep-alive and p99 for each hop and mode')
  t.match(rows[0], '| 159.0 MB (129.0 MB), **missed** |', 'the peak at 50 apps decides')
  t.match(rows[1], 'same device, HTTP: keep-alive | ≥ 0.90× sidecar pair | 0.80× (rounds 0.80×–0.80×), **missed**', 'the ratio of the medians, and the rounds\' spread')
  t.match(rows[2], 'same device, HTTP: p99 at a fixed rate | ≤ 1.10× sidecar pair | 1.20× (rounds 1.20×–1.20×), **missed**')
  t.match(rows[3], 'two devices, HTTP: keep-alive | ≥ 0.90× sidecar pair | 0.92× (rounds 0.92×–0.92×), reached')
  t.match(rows[4], 'two devices, HTTP: p99 at a fixed rate | ≤ 1.10× sidecar pair | 1.04× (rounds 1.04×–1.04×), reached')
  t.match(rows[5], 'same device, TCP: keep-alive | ≥ 0.90× sidecar pair | 1.00× (rounds 1.00×–1.00×), reached')
  t.match(rows[7], 'two devices, TCP: keep-alive | ≥ 0.90× sidecar pair | — |', 'a hop not measured shows a dash')
  const under = STEPS.map(step => step.apps === 50 ? { ...step, peakRssMb: 140 } : step)
  t.match(renderNodeTargets(under, HOPS)[4], '140.0 MB (129.0 MB), reached')
  t.match(renderNodeTargets(STEPS.slice(0, 2), HOPS)[4], '| — |', 'no step of 50 apps (a quick run): a dash')
})

void t.test('node summary – lines for npm run bench: memory by N, per app, each hop as ratios, the targets', async t => {
  t.same(memoryLines(STEPS).map(line => line.replace(/ {2,}/g, '  ')), [
    'node mode: node proxy RSS, idle, serving 1 / 10 / 50 apps  80.0 / 89.0 / 129.0 MB',
    'node mode: node proxy RSS, peak under load, serving 10 / 50 apps  119.0 / 159.0 MB',
    'node mode: RSS per app, (RSS(N) − RSS(1)) / (N − 1), idle, N = 10 / 50  1.00 / 1.00 MB',
    'node mode: RSS per app, RSS(N) / N at the peak, N = 10 / 50  11.90 / 3.18 MB'
  ])
  const lines = nodeSummaryLines(report)
  t.ok(lines.some(line => /same device, HTTP, node proxy: keep-alive .* +4,000 req\/s \(0\.80×\) · 3\.00 ms \(1\.20×\) · 1\.00 s \(0\.80×\)$/.test(line)), 'a hop\'s line')
  t.equal(lines.filter(line => / (reached|MISSED) /.test(line)).length, 7, 'every target with a measured figure')
  t.same(nodeTargetLines(STEPS, HOPS).length, 9)
})
