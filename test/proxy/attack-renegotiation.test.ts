import t from 'tap'
import { spawn } from 'node:child_process'
import type { TLSSocket } from 'node:tls'
import { servesNormally, startAttackStand } from '../helpers/attack-stand'
import type { AttackStand } from '../helpers/attack-stand'
import { OPENSSL_MISSING } from '../helpers/openssl'
import { writeSvidFiles } from '../helpers/peers'
import { openMtls } from '../helpers/raw-mtls'

// TLS 1.2 client-initiated renegotiation on the inbound HTTP listener, tried by a peer holding an allowed SVID:
// a second handshake inside a verified connection (where a client could present another certificate, or make the
// server do a handshake's work again and again for the price of a few bytes) is refused, and the sidecar goes on
// serving other connections.

let stand: AttackStand
t.before(async () => { stand = await startAttackStand() })
t.teardown(async () => { await stand.close() })

/** A running program whose stdout and stderr are read as one text, with bounded waits for what it prints. */
function interact (command: string, args: string[]): { output: () => string, write: (text: string) => void, waitFor: (pattern: RegExp, ms: number) => Promise<boolean>, stop: () => void } {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] })
  let output = ''
  let exited = false
  const wake = new Set<() => void>()
  const take = (chunk: Buffer): void => {
    output += chunk.toString('latin1')
    for (const fn of wake) fn()
  }
  child.stdout.on('data', take)
  child.stderr.on('data', take)
  child.stdin.on('error', () => { /* it may exit before reading */ })
  child.on('close', () => {
    exited = true
    for (const fn of wake) fn()
  })
  return {
    output: () => output,
    write: text => { child.stdin.write(text) },
    waitFor: async (pattern, ms) => await new Promise(resolve => {
      const check = (): void => {
        if (!pattern.test(output) && !exited) return
        clearTimeout(timer)
        wake.delete(check)
        resolve(pattern.test(output))
      }
      const timer = setTimeout(() => {
        wake.delete(check)
        resolve(false)
      }, ms)
      wake.add(check)
      check()
    }),
    stop: () => { child.kill('SIGKILL') }
  }
}

void t.test('attack renegotiation – openssl s_client -tls1_2 sending R: the sidecar does not renegotiate, and keeps serving', { skip: OPENSSL_MISSING }, async t => {
  const files = writeSvidFiles(stand.mesh.dir, 'renegotiating-client', stand.svid('client'))
  const client = interact('openssl', ['s_client', '-tls1_2', '-state', '-crlf', '-connect', `127.0.0.1:${stand.server.port('app')}`, '-cert', files.cert, '-key', files.key])
  t.teardown(client.stop)
  t.ok(await client.waitFor(/Verify return code/, 5000), 'the first handshake completes (the SVID is allowed)')
  client.write('R\n')
  t.ok(await client.waitFor(/RENEGOTIATING/, 3000), 's_client starts a renegotiation')
  // -state prints "read finished" when a handshake completes: after RENEGOTIATING, only if the sidecar took part.
  const renegotiated = await client.waitFor(/RENEGOTIATING[\s\S]*read finished/, 2000)
  const after = client.output().slice(client.output().indexOf('RENEGOTIATING'))
  t.notOk(renegotiated, `the sidecar refused the second handshake: ${JSON.stringify(after.split('\n').slice(0, 6).join(' | '))}`)
  client.stop()
  await servesNormally(t, stand.inbound, 'app')
})

void t.test('attack renegotiation – a node TLS 1.2 client\'s renegotiate() is refused; a new connection is served', async t => {
  const connection = await openMtls(stand.server.port('app'), stand.svid('client'), { maxVersion: 'TLSv1.2' })
  t.teardown(() => { connection.close() })
  connection.write('GET /public/before HTTP/1.1\r\nHost: backend.test\r\n\r\n')
  t.equal((await connection.response(false, 3000)).status, 200, 'served before')
  const socket = connection.socket as TLSSocket
  const outcome = await new Promise<string>(resolve => {
    const timer = setTimeout(() => { resolve('no second handshake within 3 s') }, 3000)
    const done = (text: string): void => {
      clearTimeout(timer)
      resolve(text)
    }
    socket.once('close', () => { done('closed') })
    const started = socket.renegotiate({ rejectUnauthorized: false }, (err: Error | null) => { done(err === null ? 'renegotiated' : `refused: ${err.message}`) })
    if (!started) done('could not start')
  })
  t.not(outcome, 'renegotiated', `not renegotiated (${outcome})`)
  t.not(outcome, 'could not start', 'the client did try')
  await servesNormally(t, stand.inbound, 'app')
})
