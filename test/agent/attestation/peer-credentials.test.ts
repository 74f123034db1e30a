import t from 'tap'
import { connect, createServer } from 'node:net'
import type { Socket } from 'node:net'
import { once } from 'node:events'
import { peerCredentials } from '../../../agent/attestation'
import { thrown } from '../../helpers/errors'
import { NEEDS_ROOT, connectedChild, peerServer } from './fixtures/peer'

void t.test('peer credentials – our own process, as the kernel reports it', async t => {
  const server = await peerServer(t)
  const accepted = server.accepted()
  const client = connect(server.path)
  t.teardown(() => client.destroy())
  const credentials = peerCredentials(await accepted)
  t.same(credentials, { pid: process.pid, uid: process.getuid?.(), gid: process.getgid?.() })
})

void t.test('peer credentials – a child running under another uid and gid', { skip: NEEDS_ROOT }, async t => {
  const server = await peerServer(t)
  const { child, socket } = await connectedChild(t, server, [], { uid: 1234, gid: 1234 })
  t.same(peerCredentials(socket), { pid: child.pid, uid: 1234, gid: 1234 })
})

void t.test('peer credentials – a TCP connection or a closed socket has none', async t => {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const accepted = once(server, 'connection') as Promise<[Socket]>
  const client = connect((server.address() as { port: number }).port, '127.0.0.1')
  const [socket] = await accepted
  const tcp = thrown(() => peerCredentials(socket))
  t.equal(tcp.code, 'ERR_ATTESTATION_PEERCRED')
  t.match(tcp.message, /no peer process/)
  socket.destroy()
  client.destroy()
  t.equal(thrown(() => peerCredentials(socket)).code, 'ERR_ATTESTATION_PEERCRED', 'a destroyed socket')
})
