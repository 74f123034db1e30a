import t from 'tap'
import type { Test } from 'tap'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { bytesSince, servesNormally, startAttackStand } from '../helpers/attack-stand'
import type { AttackStand, Direction } from '../helpers/attack-stand'
import type { RawConnection } from '../helpers/raw-http'

// Thousands of pipelined requests the policy denies, in both directions (a peer over mutual TLS straight to the
// server sidecar's inbound listener; the local app in plain TCP to the client sidecar's outbound one). Denied
// requests without a body keep the connection open, so an attacker can queue them by the thousand in one write:
// the sidecar must answer them in order (or close), without recursion per request (a RangeError would take the
// whole sidecar down: these sidecars run in this process), and without buffering answers for a client that
// does not read them.

let stand: AttackStand
t.before(async () => { stand = await startAttackStand() })
t.teardown(async () => { await stand.close() })

const denied = (n: number | string): string => `GET /private/${n} HTTP/1.1\r\nHost: backend.test\r\n\r\n`

/** The sidecar's log names no stack overflow (it runs in this process: a thrown one would end the test run). */
function noStackOverflow (t: Test, direction: Direction): void {
  t.notMatch(JSON.stringify(direction.sidecar.logs), /Maximum call stack|RangeError/, `${direction.name}: no stack overflow logged`)
}

void t.test('attack pipelining – 5000 denied requests in one write: each 403 in order (or a close), no crash, the next connection served', async t => {
  const count = 5000
  for (const direction of stand.directions) {
    const arrived = bytesSince(direction.recorder)
    const connection = await direction.open(t, 'raw')
    connection.write(Array.from({ length: count }, (_v, n) => denied(n)).join('') + 'GET /public/after-the-flood HTTP/1.1\r\nHost: backend.test\r\n\r\n')
    const statuses: number[] = []
    let last = ''
    for (let n = 0; n <= count; n++) {
      const response = await connection.response(false, 5000).catch(() => undefined)
      if (response === undefined) break
      statuses.push(response.status)
      last = response.body.toString()
    }
    const answered = statuses.length
    t.same(statuses.slice(0, count).filter(status => status !== 403), [], `${direction.name}: ${answered} answers, every denied request a 403`)
    if (answered === count + 1) t.same([statuses[count], last], [200, '/public/after-the-flood'], `${direction.name}: the allowed request after them answered last`)
    else t.ok(connection.ended, `${direction.name}: answered ${answered}, then closed`)
    t.notMatch(arrived(), '/private/', `${direction.name}: no denied request reached the backend`)
    noStackOverflow(t, direction)
    await servesNormally(t, direction)
  }
})

/** Bytes held in this process's heap and buffers, after a full garbage collection. */
const gc = ((): () => void => {
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
})()
function heldBytes (): number {
  gc()
  const usage = process.memoryUsage()
  return usage.heapUsed + usage.external
}

/** Writes `batch` until `limit` bytes are sent, the connection ends, or a write is not drained within `ms`. */
async function flood (connection: RawConnection, batch: Buffer, limit: number, ms: number): Promise<{ sent: number, stalled: boolean }> {
  let sent = 0
  while (sent < limit && !connection.ended) {
    sent += batch.length
    if (connection.socket.write(batch)) continue
    const drained = await new Promise<boolean>(resolve => {
      const timer = setTimeout(() => {
        connection.socket.off('drain', done).off('close', done)
        resolve(false)
      }, ms)
      const done = (): void => {
        clearTimeout(timer)
        connection.socket.off('drain', done).off('close', done)
        resolve(true)
      }
      connection.socket.once('drain', done).once('close', done)
    })
    if (!drained) return { sent, stalled: true }
  }
  return { sent, stalled: false }
}

const MB = 1024 * 1024

void t.test('attack pipelining – a client that floods denied requests and reads no answer: the sidecar stops reading (or closes), memory stays bounded', async t => {
  // A sidecar that reads on regardless queues about 4 bytes of answer per byte of request: 32 MiB of requests are
  // over 100 MiB of answers. One that stops reading once its answers back up lets through a few MiB (what the
  // kernel buffers hold) before the writes stall.
  const batch = Buffer.from(denied('m').repeat(2000))
  for (const direction of stand.directions) {
    const connection = await direction.open(t, 'raw')
    connection.socket.pause() // read nothing
    const before = heldBytes()
    const { sent, stalled } = await flood(connection, batch, 32 * MB, 1000)
    const grown = heldBytes() - before
    t.ok(stalled || connection.ended, `${direction.name}: after ${(sent / MB).toFixed(1)} MiB the sidecar stopped reading (${stalled ? 'stalled' : connection.ended ? 'closed' : 'it read on'})`)
    t.ok(grown < 50 * MB, `${direction.name}: memory grew by ${(grown / MB).toFixed(1)} MiB (bound: 50 MiB)`)
    connection.close()
    noStackOverflow(t, direction)
    await servesNormally(t, direction)
  }
})
