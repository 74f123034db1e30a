import t from 'tap'
import { BAD_LINE_END, ByteQueue, NO_HEAD_YET } from '../../../proxy/http1/byte-queue'

// Reading a head is linear in the bytes received, however they are split: a 64 KiB head sent a byte per TLS record
// is searched once, not from its start on every byte.

void t.test('http1 byte queue – a 64 KiB head fed a byte at a time is searched in linear work, and found whole', async t => {
  const head = Buffer.from(`GET / HTTP/1.1\r\nHost: a\r\nX: ${'a'.repeat(64 * 1024 - 40)}\r\n\r\nGET /next`, 'latin1')
  const queue = new ByteQueue()
  let found = -1
  for (let i = 0; i < head.length && found === -1; i++) {
    queue.append(head.subarray(i, i + 1))
    found = queue.headLength()
  }
  t.equal(found, head.length - 'GET /next'.length, 'the end of the head')
  t.ok(queue.bytesSearched <= 4 * head.length, `searched ${queue.bytesSearched} bytes for a ${head.length}-byte head`)
  t.equal(queue.view().toString('latin1', 0, 14), 'GET / HTTP/1.1', 'the bytes, in order')
})

void t.test('http1 byte queue – consume keeps views taken before valid, and the search position', async t => {
  const queue = new ByteQueue()
  queue.append(Buffer.from('GET / HTTP/1.1\r\n\r\nrest'))
  const length = queue.headLength()
  const view = queue.view()
  queue.consume(length)
  queue.append(Buffer.from('-more'))
  t.equal(view.toString(), 'GET / HTTP/1.1\r\n\r\nrest', 'a view taken before is not written over')
  t.equal(queue.view().toString(), 'rest-more')
  t.equal(queue.headLength(), NO_HEAD_YET)
  queue.append(Buffer.from('\r\n\r'))
  t.equal(queue.headLength(), NO_HEAD_YET)
  queue.append(Buffer.from('\n'))
  t.equal(queue.headLength(), 'rest-more\r\n\r\n'.length, 'an end split across appends is found')
  t.equal(queue.take().toString(), 'rest-more\r\n\r\n')
  t.equal(queue.length, 0)
})

void t.test('http1 byte queue – a line ending in LF alone or a CR alone is reported at once, not waited on', async t => {
  for (const text of ['GET / HTTP/1.1\nHost: a\n\n', 'GET / HTTP/1.1\r\nHost: a\n', '\n', 'GET / HTTP/1.1\r\nX: 1\r\n\n', 'HTTP/1.1 304 Not Modified\r\r\r\n', 'GET / HTTP/1.1\r\nX: a\rb', 'GET /\r\r']) {
    const queue = new ByteQueue()
    queue.append(Buffer.from(text, 'latin1'))
    t.equal(queue.headLength(), BAD_LINE_END, JSON.stringify(text))
  }
  const split = new ByteQueue()
  split.append(Buffer.from('GET / HTTP/1.1\r'))
  t.equal(split.headLength(), NO_HEAD_YET)
  split.append(Buffer.from('\nHost: a\r\n\r\n'))
  t.equal(split.headLength(), 'GET / HTTP/1.1\r\nHost: a\r\n\r\n'.length, 'a CRLF split across appends is no bare LF, and its CR waited on is no bare CR')
})
