import t from 'tap'
import { BodyProblem, BodyReader } from '../../../proxy/http1/body'
import type { BodySink } from '../../../proxy/http1/body'
import type { HeaderLine } from '../../../proxy/http1/fields'
import type { Framing } from '../../../proxy/http1/framing'

// Body readers: where a body ends, however its bytes are cut, and what its data and trailers are.

interface Read { taken: number, done: boolean, data: string, trailers: readonly HeaderLine[] | undefined }

/** Feeds `bytes` to a reader in pieces cut at `cuts`; returns what it took, whether it finished, the data and trailers it gave. */
function feed (framing: Framing, bytes: Buffer, cuts: number[]): Read {
  const reader = new BodyReader(framing, 100)
  const pieces: Buffer[] = []
  let trailers: readonly HeaderLine[] | undefined
  const sink: BodySink = { data: piece => { pieces.push(Buffer.from(piece)) }, end: fields => { trailers = fields } }
  let taken = 0
  let at = 0
  for (const end of [...cuts, bytes.length]) {
    const piece = bytes.subarray(at, end)
    const n = reader.read(piece, 0, sink)
    taken += n
    if (n < piece.length) break
    at = end
  }
  return { taken, done: reader.done, data: Buffer.concat(pieces).toString('latin1'), trailers }
}

void t.test('http1 body – a chunked body is delimited exactly, however the bytes are cut; data without framing, trailers parsed', async t => {
  const body = Buffer.from('5;ext=1;q="a;b\\"c"\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: x\r\nChecksum: 1\r\n\r\n', 'latin1')
  const bytes = Buffer.concat([body, Buffer.from('GET /next HTTP/1.1\r\n', 'latin1')])
  let checked = 0
  for (let a = 0; a <= bytes.length; a++) {
    for (let b = a; b <= bytes.length; b += 2) {
      const result = feed({ kind: 'chunked' }, bytes, [a, b])
      if (result.taken !== body.length || !result.done || result.data !== 'hello0123456789' || result.trailers?.length !== 2) t.fail(`cut at ${a}, ${b}: ${JSON.stringify(result)}`)
      checked++
    }
  }
  t.ok(checked > 1000, `${checked} ways of cutting, each ends at the body's last byte with the same data and trailers`)
  t.same(feed({ kind: 'chunked' }, bytes, []).trailers, [{ name: 'X-Trailer', lower: 'x-trailer', value: 'x' }, { name: 'Checksum', lower: 'checksum', value: '1' }])
  t.match(feed({ kind: 'length', length: 4 }, Buffer.from('abcdefg'), [1, 2]), { taken: 4, done: true, data: 'abcd', trailers: [] })
  t.match(feed({ kind: 'none' }, Buffer.from('abc'), []), { taken: 0, done: true, data: '', trailers: undefined })
  t.match(feed({ kind: 'close' }, Buffer.from('abc'), [1]), { taken: 3, done: false, data: 'abc' }, 'close-delimited: never done until the connection ends')
})

void t.test('http1 body – malformed chunked bodies are refused', async t => {
  const bad = ['zz\r\n', '5\nhello', '5\r\nhello\n', '3\r\nabcdef\r\n', `${'1'.repeat(5000)}`, '5 \r\nhello\r\n', '5\t\r\n', '5;\r\n', '5;a b\r\n', '5;a="x\r\n',
    '0x5\r\n', '-5\r\n', '1234567890abc\r\n', '5\rX\nhello', '0\r\nbad trailer\r\n\r\n', '0\r\nX: a\x00\r\n\r\n', '0\r\n folded: x\r\n\r\n']
  for (const text of bad) {
    let caught: unknown
    try {
      new BodyReader({ kind: 'chunked' }, 100).read(Buffer.from(text, 'latin1'), 0, { data: () => {}, end: () => {} })
    } catch (err) {
      caught = err
    }
    t.ok(caught instanceof BodyProblem, `${JSON.stringify(text.slice(0, 20))}: ${String(caught)}`)
  }
  for (const field of ['Content-Length: 0', 'transfer-encoding: chunked', 'Connection: close', 'Proxy-Connection: close', 'Upgrade: websocket']) {
    const trailer = `0\r\nX-Before: 1\r\n${field}\r\n\r\n`
    t.throws(() => new BodyReader({ kind: 'chunked' }, 100).read(Buffer.from(trailer), 0, { data: () => {}, end: () => {} }), /may not be a trailer field/, `${field}: llhttp applies it as a head field`)
  }
  const many = `0\r\n${Array.from({ length: 5 }, (_v, i) => `T-${i}: ${i}\r\n`).join('')}\r\n`
  t.throws(() => new BodyReader({ kind: 'chunked' }, 4).read(Buffer.from(many), 0, { data: () => {}, end: () => {} }), /more than 4 trailer lines/)
})
