import t from 'tap'
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pace } from '../../bench/proxy/paced'

/** A keep-alive server that answers at once, except that every answer waits while `stalled()` holds. */
async function server (stalled: () => boolean, status = 200): Promise<{ url: string, requests: () => number, close: () => Promise<void> }> {
  let requests = 0
  const waiting: Array<() => void> = []
  const srv = createServer((_req, res) => {
    requests++
    const answer = (): void => { res.writeHead(status, { 'content-length': 3 }).end('ok\n') }
    if (stalled()) waiting.push(answer)
    else answer()
  })
  const timer = setInterval(() => { if (!stalled()) waiting.splice(0).forEach(answer => answer()) }, 1)
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  return {
    url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}/`,
    requests: () => requests,
    close: async () => { clearInterval(timer); srv.closeAllConnections(); srv.close(); await once(srv, 'close') }
  }
}

void t.test('paced client – sends the scheduled number of requests and measures them all', async t => {
  const s = await server(() => false)
  t.teardown(s.close)
  const result = await pace(s.url, { rate: 200, seconds: 1, connections: 2 })
  t.equal(result.sent, 200)
  t.equal(result.count, 200, 'every scheduled request answered')
  t.equal(result.errors, 0)
  t.equal(s.requests(), 202, 'plus one warm-up request per connection, not counted')
  t.ok(result.p50Ms < 20, `p50 ${result.p50Ms} ms on an idle loopback server`)
  t.ok(result.p50Ms <= result.p99Ms && result.p99Ms <= result.maxMs)
})

void t.test('paced client – a stall counts against every request scheduled during it (no coordinated omission)', async t => {
  // 200 requests/s over 2 connections; the server holds every answer for 300 ms from 0.3 s into the run.
  let start = Number.POSITIVE_INFINITY
  const s = await server(() => { const at = Date.now() - start; return at >= 300 && at < 600 })
  t.teardown(s.close)
  start = Date.now()
  const result = await pace(s.url, { rate: 200, seconds: 1.5, connections: 2 })
  t.equal(result.errors, 0)
  // ~60 of 300 requests fall in the stall: measured from their intended times they wait up to 300 ms. A client
  // that timed from the actual send would see only the 2 requests in flight when the stall began as slow.
  t.ok(result.p99Ms > 150, `p99 ${result.p99Ms} ms reflects the stall`)
  t.ok(result.maxMs >= 250 && result.maxMs < 1000, `max ${result.maxMs} ms is about the stall's length`)
  t.ok(result.p50Ms < 50, `p50 ${result.p50Ms} ms: most requests were not delayed`)
})

void t.test('paced client – error answers are errors, not latencies', async t => {
  const s = await server(() => false, 503)
  t.teardown(s.close)
  await t.rejects(pace(s.url, { rate: 100, seconds: 0.2, connections: 1 }), /no successful response .* \(20 errors\)/)
})
