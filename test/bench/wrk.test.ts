import t from 'tap'
import { parseWrk, runWrk, wrkArgs } from '../../bench/proxy/wrk'

// wrk's report as it prints it with --latency; only the numbers of interest vary between the cases below.
const report = (o: { requests?: string, rps?: string, transfer?: string, p50?: string, p99?: string, extra?: string } = {}): string => `Running 5s test @ http://127.0.0.1:8080/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.03ms    4.11ms  61.52ms   95.41%
    Req/Sec    22.72k     1.93k   25.41k    78.00%
  Latency Distribution
     50%    ${o.p50 ?? '1.79ms'}
     75%    2.01ms
     90%    2.45ms
     99%    ${o.p99 ?? '24.67ms'}
  ${o.requests ?? '113024'} requests in 5.00s, 17.78MB read
${o.extra ?? ''}Requests/sec:  ${o.rps ?? '22602.41'}
Transfer/sec:      ${o.transfer ?? '3.56MB'}
`

void t.test('wrk – reads requests, rate, percentiles and transfer rate by label', async t => {
  t.same(parseWrk(report()), { requests: 113024, requestsPerSecond: 22602.41, p50Ms: 1.79, p99Ms: 24.67, bytesPerSecond: 3.56 * 2 ** 20, errors: 0 })
})

void t.test('wrk – converts every time unit to milliseconds', async t => {
  t.equal(parseWrk(report({ p50: '812.00us' })).p50Ms, 0.812)
  t.equal(parseWrk(report({ p99: '1.50s' })).p99Ms, 1500)
  t.equal(parseWrk(report({ p99: '2.00m' })).p99Ms, 120_000)
  t.throws(() => parseWrk(report({ p99: '12.0xs' })), /unreadable wrk duration/)
})

void t.test('wrk – Transfer/sec is in powers of 1024, with or without a prefix', async t => {
  const bytes = (transfer: string): number => parseWrk(report({ transfer })).bytesPerSecond
  t.equal(bytes('512.00B'), 512)
  t.equal(bytes('830.50KB'), 830.5 * 1024)
  t.equal(bytes('261.45MB'), 261.45 * 1024 * 1024)
  t.equal(bytes('1.55GB'), 1.55 * 1024 ** 3)
  t.throws(() => parseWrk(report({ transfer: '3.5 MB' })), /unreadable wrk output/)
})

void t.test('wrk – a k or M suffix on requests/s multiplies it', async t => {
  t.equal(parseWrk(report({ rps: '145.82k' })).requestsPerSecond, 145_820)
  t.equal(parseWrk(report({ rps: '1.20M' })).requestsPerSecond, 1_200_000)
})

void t.test('wrk – socket errors and non-2xx responses add up to errors', async t => {
  const extra = '  Socket errors: connect 1, read 2, write 3, timeout 4\n  Non-2xx or 3xx responses: 10\n'
  t.equal(parseWrk(report({ extra })).errors, 20)
})

void t.test('wrk – output without the latency distribution or the totals is refused, not read as zero', async t => {
  t.throws(() => parseWrk(report().replace(/^\s+99%.*$/m, '')), /run with --latency/)
  t.throws(() => parseWrk(report().replace(/requests in/, 'reqs in')), /unreadable wrk output/)
})

void t.test('wrk – the arguments carry the extra header as one argument', async t => {
  t.same(wrkArgs('http://h/', { threads: 1, connections: 50, seconds: 4, header: 'Connection: close' }),
    ['-t1', '-c50', '-d4s', '--latency', '-H', 'Connection: close', 'http://h/'])
  t.same(wrkArgs('http://h/1m', { threads: 1, connections: 4, seconds: 4 }), ['-t1', '-c4', '-d4s', '--latency', 'http://h/1m'])
})

void t.test('wrk – a launcher runs it elsewhere (node mode: inside a namespace), with the same arguments', async t => {
  // echo as the launcher prints the command it was given, which is no wrk report.
  await t.rejects(runWrk('http://10.0.0.1:8080/', { threads: 1, connections: 50, seconds: 5 }, ['echo', 'in-ns']),
    /unreadable wrk output[\s\S]*in-ns wrk -t1 -c50 -d5s --latency http:\/\/10\.0\.0\.1:8080\//)
})
