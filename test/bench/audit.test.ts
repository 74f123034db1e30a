import t from 'tap'
import { ConnectionCounter, parseSockets } from '../../bench/proxy/audit'

// `ss -Htane` lines: state, queues, local, peer, then extras with the socket cookie (sk:, in hex).
const line = (state: string, local: string, peer: string, cookie: string): string =>
  `${state} 0 0 ${local} ${peer} ${state === 'TIME-WAIT' ? 'timer:(timewait,59sec,0) ' : ''}ino:${state === 'TIME-WAIT' ? 0 : 777} sk:${cookie} <->`

void t.test('audit – socket lines are attributed to the listening port they touch; listeners are left out', async t => {
  const output = [
    'LISTEN 0 511 127.0.0.1:8000 0.0.0.0:* ino:1 sk:1 <->',
    line('ESTAB', '127.0.0.1:40000', '127.0.0.1:8000', 'a1'),
    line('ESTAB', '127.0.0.1:8000', '127.0.0.1:40000', 'a2'),
    line('TIME-WAIT', '127.0.0.1:9000', '127.0.0.1:41000', 'b1'),
    line('ESTAB', '127.0.0.1:50000', '127.0.0.1:7000', 'c1'),
    'garbage'
  ].join('\n')
  const entries = parseSockets(output, [8000, 9000])
  t.same(entries.map(e => e.port), [8000, 8000, 9000])
  t.equal(entries[0].connection, entries[1].connection, 'both ends of a connection name it the same way')
  t.same(entries.map(e => e.cookie), ['a1', 'a2', 'b1'])
})

void t.test('audit – the counter counts new connections, per port, and not the baseline', async t => {
  const counter = new ConnectionCounter([8000, 9000])
  const snap = (...lines: string[]): ReturnType<typeof parseSockets> => parseSockets(lines.join('\n'), [8000, 9000])
  const pooled = line('ESTAB', '127.0.0.1:45000', '127.0.0.1:9000', 'f1')
  counter.observe(snap(pooled, line('TIME-WAIT', '127.0.0.1:40000', '127.0.0.1:8000', 'de')), true)
  t.same(counter.counts, [0, 0], 'what exists before is not counted')
  // Request 1: a new client connection, the pooled upstream one reused.
  counter.observe(snap(pooled, line('ESTAB', '127.0.0.1:40001', '127.0.0.1:8000', 'a1'), line('ESTAB', '127.0.0.1:8000', '127.0.0.1:40001', 'a2')))
  t.same(counter.counts, [1, 0])
  // Request 2: the first one is in TIME-WAIT with one of its cookies; a second one reuses the baseline's address pair.
  counter.observe(snap(pooled, line('TIME-WAIT', '127.0.0.1:40001', '127.0.0.1:8000', 'a1'), line('ESTAB', '127.0.0.1:40000', '127.0.0.1:8000', 'b1')))
  t.same(counter.counts, [2, 0], 'the same address pair with a new cookie is a new connection')
  // Request 3: the upstream connection is replaced by a new one on the same address pair.
  counter.observe(snap(line('ESTAB', '127.0.0.1:45000', '127.0.0.1:9000', 'f2'), line('ESTAB', '127.0.0.1:40002', '127.0.0.1:8000', 'a3')))
  t.same(counter.counts, [3, 1])
})
