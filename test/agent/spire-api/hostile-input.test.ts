import t from 'tap'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import { CODE, entry, rawCall, startSpireApiStand } from './fixtures/spire-api-stand'

// Hostile input on the SPIRE server socket: bytes that are not gRPC, HTTP/2 left half-sent, bodies that are not the
// protobuf they claim to be, one batch of thousands of entries, a token of a megabyte. None may crash or stall the
// agent, and nothing malformed may be stored: after each, it still answers and its entries are what they were.

interface Created { results: Array<{ status: { code: number } }> }

void t.test('hostile input – the SPIRE server socket survives what is not gRPC and what is not its protobuf', async t => {
  const stand = await startSpireApiStand(t)
  const count = async (): Promise<number> => (await stand.call<{ count: number }>('CountEntries', {})).count
  const before = await count()

  await t.test('garbage, a half-sent preface (split at every byte), 200 connections left open', async t => {
    const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n')
    const sockets: Socket[] = []
    const open = async (): Promise<Socket> => {
      const socket = connect(stand.serverSocket)
      socket.on('error', () => {})
      await once(socket, 'connect')
      sockets.push(socket)
      return socket
    }
    t.teardown(() => { for (const socket of sockets) socket.destroy() })
    ;(await open()).write(randomBytes(64 * 1024))
    ;(await open()).write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
    const split = await open()
    for (const byte of preface.subarray(0, preface.length - 1)) split.write(Buffer.from([byte]))
    for (let i = 0; i < 200; i++) (await open()).write(preface.subarray(0, i % preface.length))
    t.equal(await count(), before, 'the agent still answers, its entries unchanged')
  })

  await t.test('bodies that are not the protobuf they claim to be: each answered, nothing stored or deleted', async t => {
    const kept = await stand.call<{ results: Array<{ entry: { id: string } }> }>('BatchCreateEntry', { entries: [entry(stand, '/hostile/kept')] })
    const keptId = kept.results[0].entry.id
    const bodies = [randomBytes(4096), Buffer.alloc(4096, 0xff), Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]), Buffer.from([0x0a, 0x05, 0x0a])]
    const methods = ['/spire.api.server.entry.v1.Entry/BatchCreateEntry', '/spire.api.server.entry.v1.Entry/BatchUpdateEntry',
      '/spire.api.server.entry.v1.Entry/BatchDeleteEntry', '/spire.api.server.entry.v1.Entry/ListEntries',
      '/spire.api.server.bundle.v1.Bundle/BatchSetFederatedBundle', '/spire.api.server.bundle.v1.Bundle/BatchDeleteFederatedBundle']
    for (const method of methods) {
      for (const [i, body] of bodies.entries()) {
        // Refused, or (protobufjs reads a cut-short string as far as it goes) answered item by item as not found.
        const answer = await rawCall(stand.serverSocket, method, body)
        t.comment(`${method}, body ${i}: code ${answer.code} ${answer.details}`)
      }
    }
    t.equal(await count(), before + 1, 'nothing was stored, and nothing deleted')
    t.equal((await stand.call<{ id: string }>('GetEntry', { id: keptId })).id, keptId, 'the entry made before is still there')
    t.equal((await stand.call<{ bundles: unknown[] }>('ListFederatedBundles', {}, 'bundle')).bundles.length, 0, 'no federated bundle was set')
  })

  await t.test('one batch of 5,000 entries, then 5,000 copies of one: every result in order, the agent answering', async t => {
    const many = Array.from({ length: 5000 }, (_, i) => entry(stand, `/hostile/many-${i}`))
    const created = await stand.call<Created>('BatchCreateEntry', { entries: many }, 'entry', 120_000)
    t.equal(created.results.length, 5000, 'one result per entry')
    t.ok(created.results.every(result => result.status.code === CODE.OK), 'all created')
    const copies = Array.from({ length: 5000 }, () => entry(stand, '/hostile/same'))
    const repeated = await stand.call<Created>('BatchCreateEntry', { entries: copies }, 'entry', 120_000)
    t.same(repeated.results.map(result => result.status.code), [CODE.OK, ...Array<number>(4999).fill(CODE.ALREADY_EXISTS)], 'the first is created, the rest are similar to it')
    t.equal(await count(), before + 5002, 'exactly those are stored (and the one kept above)')
  })

  await t.test('a page token of a megabyte is refused; the list still pages', async t => {
    const refused = await stand.failure('ListEntries', { page_size: 10, page_token: '9'.repeat(1 << 20) })
    t.equal(refused?.code, CODE.INTERNAL, 'refused as SPIRE refuses a token it cannot parse')
    t.ok((refused?.details.length ?? Infinity) < 2048, `with the token cut short in the message: ${refused?.details.slice(-60) ?? ''}`)
    const page = await stand.call<{ entries: unknown[], next_page_token: string }>('ListEntries', { page_size: 10 })
    t.equal(page.entries.length, 10, 'a first page of 10')
    t.not(page.next_page_token, '', 'with a token')
  })
})
