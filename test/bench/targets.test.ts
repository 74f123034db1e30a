import t from 'tap'
import { LOADS } from '../../bench/proxy/loads'
import { renderReport } from '../../bench/proxy/report'
import { renderTargets } from '../../bench/proxy/targets'
import { RESULTS } from './results-fixture'

const rowOf = (lines: readonly string[], label: string): string => lines.find(l => l.startsWith(`| ${label} |`)) ?? ''
const cells = (row: string): string[] => row.split(' | ').map(c => c.replace(/^\| |\s\|$/g, ''))

void t.test('targets – each judged from this run\'s ratio to haproxy, with what bounds it and a link to its profile', async t => {
  const lines = renderTargets(RESULTS)
  // The fixture: TCP 20,000 vs 40,000 req/s, HTTP 5,000 vs 25,000, new connections 500 vs 1,000, sidecars peak at 70 MB.
  t.same(cells(rowOf(lines, 'keep-alive requests/s, TCP mode')).slice(1, 3), ['≥ 0.80×', '0.50×, **missed**'])
  t.same(cells(rowOf(lines, 'keep-alive requests/s, HTTP mode')).slice(1, 3), ['≥ 0.60×', '0.20×, **missed**'])
  t.same(cells(rowOf(lines, 'new connections/s, TCP mode')).slice(1, 3), ['≥ 0.90×', '0.50×, **missed**'])
  t.same(cells(rowOf(lines, 'sidecar peak RSS under load')).slice(1, 3), ['≤ 60 MB', '70.0 MB, **missed**'])
  t.match(rowOf(lines, 'keep-alive requests/s, TCP mode'), '[profile](tuning.md#tcp-mode-bound-by-native-writes-and-the-stream-layer)')
  t.match(rowOf(lines, 'sidecar peak RSS under load'), '[profile](tuning.md#memory)')
})

void t.test('targets – reached at the target itself; a run without the figure shows none', async t => {
  const fast = RESULTS.map(p => p.proxy === 'Chaperone' ? { ...p, peakRssMb: [41, 60], rounds: p.rounds.map(r => ({ ...r, keepAlive: { ...r.keepAlive, requestsPerSecond: r.keepAlive.requestsPerSecond * (p.mode === 'tcp' ? 1.6 : 3) } })) } : p)
  const lines = renderTargets(fast)
  t.match(rowOf(lines, 'keep-alive requests/s, TCP mode'), '| 0.80×, reached |')
  t.match(rowOf(lines, 'keep-alive requests/s, HTTP mode'), '| 0.60×, reached |')
  t.match(rowOf(lines, 'sidecar peak RSS under load'), '| 60.0 MB, reached |')
  const noSidecars = renderTargets(RESULTS.filter(p => p.proxy !== 'Chaperone'))
  t.match(rowOf(noSidecars, 'new connections/s, TCP mode'), '| ≥ 0.90× | — |')
  t.match(rowOf(noSidecars, 'sidecar peak RSS under load'), '| ≤ 60 MB | — |')
})

void t.test('targets – at the top of results.md, before the method', async t => {
  const report = renderReport(RESULTS, { rounds: 3, loads: LOADS, versions: {}, minutes: 1, chart: 'results.svg' })
  t.ok(report.indexOf('## Targets') > 0 && report.indexOf('## Targets') < report.indexOf('## Method'))
})

void t.test('targets – Chaperone ahead of ghostunnel in TCP mode, strictly; none without a ghostunnel run', async t => {
  const lines = renderTargets(RESULTS)
  // The fixture: TCP 20,000 vs ghostunnel's 30,000 req/s, new connections 500 vs 400.
  t.same(cells(rowOf(lines, 'keep-alive requests/s, TCP mode, vs ghostunnel')).slice(1, 3), ['> 1.00× ghostunnel', '0.67×, **missed**'])
  t.same(cells(rowOf(lines, 'new connections/s, TCP mode, vs ghostunnel')).slice(1, 3), ['> 1.00× ghostunnel', '1.25×, reached'])
  t.match(rowOf(lines, 'new connections/s, TCP mode, vs ghostunnel'), '[profile](tuning.md#new-connections-bound-by-the-tls-handshake)')
  const even = RESULTS.map(p => p.proxy === 'ghostunnel' ? { ...p, rounds: p.rounds.map(r => ({ ...r, newConnections: { ...r.newConnections, requestsPerSecond: r.newConnections.requestsPerSecond * 1.25 } })) } : p)
  t.match(rowOf(renderTargets(even), 'new connections/s, TCP mode, vs ghostunnel'), '| 1.00×, **missed** |', 'level is not ahead')
  const noGhostunnel = renderTargets(RESULTS.filter(p => p.proxy !== 'ghostunnel'))
  t.match(rowOf(noGhostunnel, 'keep-alive requests/s, TCP mode, vs ghostunnel'), '| > 1.00× ghostunnel | — |')
  t.match(rowOf(noGhostunnel, 'keep-alive requests/s, TCP mode'), '| 0.50×, **missed** |', 'the haproxy targets are judged as before')
})

