import t from 'tap'
import { FIGURES, ratio, ratioTo, referenceOf } from '../../bench/proxy/figures'
import { LOADS } from '../../bench/proxy/loads'
import { renderReport, renderTable, summaryTable } from '../../bench/proxy/report'
import { RESULTS, pathResult } from './results-fixture'

const [direct, chaperoneTcp, haproxyTcp, ghostunnel, chaperoneHttp, haproxyHttp, nginx] = RESULTS
const context = { rounds: 3, loads: LOADS, versions: { node: 'v20.0.0', haproxy: '2.6.12' }, minutes: 6.5, chart: 'results.svg' }

void t.test('figures – medians of the rounds, and the reference is haproxy in the same mode', async t => {
  t.equal(FIGURES.keepAliveRps.value(chaperoneTcp), 20_000)
  t.equal(FIGURES.bodyThroughput.value(haproxyHttp), 400)
  t.equal(FIGURES.pacedP99.value(chaperoneHttp), 10)
  t.equal(FIGURES.cpuPer10k.value(chaperoneTcp), 0.5)
  t.equal(FIGURES.newConnectionCpu.value(haproxyTcp), 2.5)
  t.equal(FIGURES.peakRss.value(chaperoneHttp), 135)
  t.equal(FIGURES.cpuPer10k.value(direct), undefined, 'no proxy, no proxy CPU')
  t.equal(FIGURES.peakRss.value(direct), undefined)
  t.equal(referenceOf(chaperoneTcp, RESULTS), haproxyTcp)
  t.equal(referenceOf(nginx, RESULTS), haproxyHttp)
  t.equal(referenceOf(ghostunnel, RESULTS), haproxyTcp, 'ghostunnel, a TCP proxy, against haproxy in tcp mode')
  t.equal(referenceOf(direct, RESULTS), undefined)
})

void t.test('figures – every figure as a ratio to haproxy in the same mode', async t => {
  t.equal(ratio(FIGURES.keepAliveRps, chaperoneTcp, RESULTS), 0.5)
  t.equal(ratio(FIGURES.keepAliveRps, chaperoneHttp, RESULTS), 0.2)
  t.equal(ratio(FIGURES.keepAliveRps, nginx, RESULTS), 1.2)
  t.equal(ratio(FIGURES.pacedP99, chaperoneTcp, RESULTS), 2)
  t.equal(ratio(FIGURES.cpuPer10k, chaperoneHttp, RESULTS), 5)
  t.equal(ratio(FIGURES.peakRss, nginx, RESULTS), 40 / 45)
  t.equal(ratio(FIGURES.keepAliveRps, haproxyHttp, RESULTS), 1)
  t.equal(ratio(FIGURES.keepAliveRps, direct, RESULTS), undefined)
  t.equal(ratio(FIGURES.keepAliveRps, chaperoneTcp, [chaperoneTcp]), undefined, 'no haproxy run, no ratio')
  t.equal(ratio(FIGURES.newConnectionRate, ghostunnel, RESULTS), 0.4)
  t.equal(ratioTo(FIGURES.newConnectionRate, chaperoneTcp, ghostunnel), 1.25, 'or to any other path')
  t.equal(ratioTo(FIGURES.newConnectionRate, chaperoneTcp, undefined), undefined, 'none without the other path')
})

void t.test('report – a table has a header, an alignment row and a row per path', async t => {
  const lines = renderTable(RESULTS.slice(0, 2), [{ header: 'n', numeric: true, cell: p => p.name.length.toString() }])
  t.same(lines, ['| path | n |', '|---|---:|', '| direct to nginx | 15 |', '| Chaperone sidecars, TCP | 23 |'])
})

void t.test('report – every figure with its ratio, in its table', async t => {
  const report = renderReport(RESULTS, context)
  const row = (section: string, name: string): string => {
    const table = report.slice(report.indexOf(`## ${section}`))
    return table.split('\n').find(l => l.startsWith(`| ${name} |`)) ?? ''
  }
  t.equal(row('Keep-alive', 'Chaperone sidecars, TCP'), '| Chaperone sidecars, TCP | 20,000 | 0.50× | 2.00 | 2.00× | 20.00 | 2.00× | 0 |')
  t.equal(row('Keep-alive', 'direct to nginx'), '| direct to nginx | 100,000 | — | 0.20 | — | 0.50 | — | 0 |')
  t.match(row('Latency at a fixed rate', 'nginx, http'), /^\| nginx, http \| 1\.25 \| 2\.00× \| 5\.00 \| 2\.00× \| 10\.0 \| 2\.00× \| 0 \| 0\.50 \|$/)
  t.match(row('One request per connection', 'Chaperone sidecars, HTTP'), /^\| Chaperone sidecars, HTTP \| 250 \| 0\.50× \| 20\.00 \| 5\.00× \| 1 · 0 · 0 \| 0 \|$/)
  t.match(row('1 MiB body', 'haproxy, tcp mode'), /^\| haproxy, tcp mode \| 500 \| 1\.00× \| 0 \|$/)
  t.equal(row('Resources', 'Chaperone sidecars, HTTP'), '| Chaperone sidecars, HTTP | 2.00 | 5.00× | 35.0 → 70.0 | 32.5 → 65.0 | 135.0 | 3.00× | 28.0 · 26.0 |')
  t.equal(row('Resources', 'direct to nginx'), '| direct to nginx | — | — | — | — | — | — | — |')
  t.equal(row('Keep-alive', 'ghostunnel, TCP'), '| ghostunnel, TCP | 30,000 | 0.75× | 1.50 | 1.50× | 12.00 | 1.20× | 0 |')
  t.match(row('One request per connection', 'ghostunnel, TCP'), /^\| ghostunnel, TCP \| 400 \| 0\.40× \| 3\.00 \| 1\.20× \| 1 · 1 · 1 \| 0 \|$/)
  t.match(row('Every round', 'haproxy, tcp mode'), /^\| haproxy, tcp mode \| 36,000 \/ 44,000 \/ 40,000 \| /)
})

void t.test('report – the method, the chart and what each side checks are in it', async t => {
  const report = renderReport(RESULTS, context)
  t.match(report, '![Proxy benchmark chart')
  t.match(report, '](results.svg)')
  t.match(report, "`wrk -t1 -c50 -d4s --latency -H 'Connection: close' http://<path>/`")
  t.match(report, '1,000 requests/s for 5 s over 10')
  t.match(report, 'versions: node v20.0.0, haproxy 2.6.12')
  t.match(report, 'took 6.5 minutes')
  t.match(report, '## What each side checks\n\nChaperone verifies the peer chain, its SPIFFE ID and the policy at both ends')
  t.match(report, 'Every path answered `Connection: close`')
})

void t.test('report – what one request per connection costs, path by path, from the audit', async t => {
  const report = renderReport([...RESULTS, { ...nginx, name: 'half', audit: { ...nginx.audit, perRequest: [1, 0.5, 0.04] } }], context)
  t.match(report, '\n- direct to nginx: a new connection to the backend\n')
  t.match(report, '\n- haproxy, tcp mode: a new client connection, a new mutual-TLS connection between the hops, a new connection to the backend\n')
  t.match(report, '\n- nginx, http: a new client connection, a pooled mutual-TLS connection between the hops (none opened), a pooled connection to the backend (none opened)\n')
  t.match(report, '\n- half: a new client connection, 0.50 new mutual-TLS connection between the hops per request')
})

void t.test('report – a path that keeps connections open under `Connection: close` is named', async t => {
  const kept = { ...nginx, audit: { ...nginx.audit, closesEveryResponse: false } }
  t.match(renderReport([...RESULTS.slice(0, 6), kept], context), '**Some paths kept the connection open** (nginx, http)')
  t.ok(pathResult('x', 'nginx', 'http', { rps: 1, p50: 1, p99: 1, pacedP99: 1, newConnections: 1, mibps: 1, rss: [] }))
})

void t.test('report – the summary: the README\'s table, a row per path, right after the targets', async t => {
  const report = renderReport(RESULTS, context)
  const lines = summaryTable(RESULTS)
  t.same(lines.slice(4, 6), [
    '| path | keep-alive req/s | × haproxy | p99 at 1,000 req/s | new conn./s | × haproxy | 1 MiB MiB/s | CPU s / 10k req | peak RSS per hop |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|'
  ])
  t.same(lines.slice(6, 6 + RESULTS.length), [
    '| direct to nginx | 100,000 | — | 1.00 ms | 30,000 | — | 1,500 | — | — |',
    '| Chaperone sidecars, TCP | 20,000 | 0.50× | 4.00 ms | 500 | 0.50× | 250 | 0.50 | 48–50 MB |',
    '| haproxy, tcp mode | 40,000 | 1.00× | 2.00 ms | 1,000 | 1.00× | 500 | 0.25 | 20–24 MB |',
    '| ghostunnel, TCP | 30,000 | 0.75× | 2.50 ms | 400 | 0.40× | 450 | 0.30 | 12–14 MB |',
    '| Chaperone sidecars, HTTP | 5,000 | 0.20× | 10.00 ms | 250 | 0.50× | 100 | 2.00 | 65–70 MB |',
    '| haproxy, http mode | 25,000 | 1.00× | 2.50 ms | 500 | 1.00× | 400 | 0.40 | 20–25 MB |',
    '| nginx, http | 30,000 | 1.20× | 5.00 ms | 15,000 | 30.00× | 500 | 0.30 | 20 MB |'
  ])
  t.ok(report.indexOf('## Targets') < report.indexOf('## Summary') && report.indexOf('## Summary') < report.indexOf('## Method'))
})

void t.test('report – how ghostunnel ran, only when it did; notes on the run open the method', async t => {
  const report = renderReport(RESULTS, { ...context, notes: ['a note'] })
  t.match(report, '## Method\n\n- **a note**\n- ')
  t.match(report, '- ghostunnel: `ghostunnel client --keystore')
  t.match(report, 'GODEBUG=tlsmlkem=0')
  t.match(report, 'ghostunnel v1.8.4\'s client keeps no session cache')
  const without = renderReport(RESULTS.filter(p => p.proxy !== 'ghostunnel'), context)
  t.notMatch(without, '- ghostunnel: `ghostunnel client')
  t.match(renderReport(RESULTS, { ...context, rounds: 1 }), '- 1 round after a warm-up')
})
