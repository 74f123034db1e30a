import t from 'tap'
import { once } from 'node:events'
import { connect, createServer } from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import { UpstreamPool } from '../../../proxy/http1/upstream-pool'

// The pool of idle upstream connections: newest first, and never one made under credentials that have expired since.

void t.test('upstream pool – an idle connection whose credentials expired is closed, not reused', async t => {
  const server = createServer(socket => { socket.on('error', () => {}) }).listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.close() })
  const port = (server.address() as AddressInfo).port
  const open = async (): Promise<Socket> => {
    const socket = connect(port, '127.0.0.1')
    await once(socket, 'connect')
    t.teardown(() => { socket.destroy() })
    return socket
  }
  const pool = new UpstreamPool(60_000, () => {})
  const valid = pool.adopt(await open(), 'peer', undefined, Date.now() + 60_000)
  const expired = pool.adopt(await open(), 'peer', undefined, Date.now() + 50)
  pool.release(valid, true)
  pool.release(expired, true)
  await new Promise(resolve => setTimeout(resolve, 100))
  t.equal(pool.take('peer'), valid, 'the newest idle connection had expired: the next one is taken')
  t.ok(expired.socket.destroyed, 'the expired one is closed')
  t.equal(pool.take('peer'), undefined, 'and gone from the pool')
  const plain = pool.adopt(await open(), 'app', undefined)
  pool.release(plain, true)
  t.equal(pool.take('app'), plain, 'a plain connection to the app has no credentials to expire')
})
