import t from 'tap'
import { DerError, TAG, children, expectElement, readElement, readOid, readSmallInteger, readTime, splitConcatenatedDer } from '../../spiffe/der'

const bytes = (...values: number[]): Buffer => Buffer.from(values)

void t.test('der – reads short and long lengths, and children of a constructed element', async t => {
  const seq = bytes(0x30, 0x06, 0x02, 0x01, 0x05, 0x01, 0x01, 0xff)
  const el = expectElement(seq, 0, TAG.SEQUENCE)
  t.same([el.start, el.end], [2, 8])
  t.same(children(seq, el).map(c => c.tag), [TAG.INTEGER, TAG.BOOLEAN])
  const long = Buffer.concat([bytes(0x04, 0x82, 0x01, 0x00), Buffer.alloc(256)])
  t.same(readElement(long, 0), { tag: 0x04, offset: 0, start: 4, end: 260 })
})

void t.test('der – malformed encodings are DerErrors naming the problem', async t => {
  const cases: Array<[string, () => unknown, RegExp]> = [
    ['truncated header', () => readElement(bytes(0x30), 0), /truncated element header/],
    ['high tag number', () => readElement(bytes(0x1f, 0x01, 0x00), 0), /high-tag-number/],
    ['indefinite length', () => readElement(bytes(0x30, 0x80, 0x00, 0x00), 0), /unsupported length encoding/],
    ['five length octets', () => readElement(bytes(0x30, 0x85, 1, 1, 1, 1, 1), 0), /unsupported length encoding/],
    ['truncated length', () => readElement(bytes(0x30, 0x82, 0x01), 0), /truncated length/],
    ['overrun', () => readElement(bytes(0x30, 0x05, 0x00), 0), /overruns/],
    ['overrun of the container', () => children(bytes(0x30, 0x03, 0x04, 0x05, 0x00), { tag: 0x30, offset: 0, start: 2, end: 5 }), /overruns/],
    ['wrong tag', () => expectElement(bytes(0x02, 0x01, 0x00), 0, TAG.SEQUENCE), /expected tag 0x30, found 0x2/],
    ['empty OID', () => readOid(bytes(0x06, 0x00), { tag: 0x06, offset: 0, start: 2, end: 2 }), /OBJECT IDENTIFIER/],
    ['negative count', () => readSmallInteger(bytes(0x02, 0x01, 0xff), { tag: 0x02, offset: 0, start: 2, end: 3 }), /negative/],
    ['bad time', () => readTime(bytes(0x17, 0x03, 0x31, 0x32, 0x33), { tag: 0x17, offset: 0, start: 2, end: 5 }), /invalid time/],
    ['concatenation with trailing junk', () => splitConcatenatedDer(bytes(0x30, 0x00, 0x02)), /truncated/]
  ]
  for (const [name, fn, reason] of cases) {
    try {
      fn()
      t.fail(`${name}: no error`)
    } catch (err) {
      t.ok(err instanceof DerError, `${name}: a DerError`)
      t.match((err as Error).message, reason, `${name}: names the problem`)
    }
  }
})

void t.test('der – OIDs, integers and times', async t => {
  const oid = Buffer.from('06082a8648ce3d040302', 'hex') // ecdsa-with-SHA256, multi-byte arcs
  t.equal(readOid(oid, readElement(oid, 0)), '1.2.840.10045.4.3.2')
  const big = bytes(0x02, 0x05, 0x01, 0x00, 0x00, 0x00, 0x00)
  t.equal(readSmallInteger(big, readElement(big, 0)), 0x7fffffff, 'huge counts clamp rather than overflow')
  const utc = Buffer.concat([bytes(0x17, 13), Buffer.from('491231235959Z')])
  t.equal(readTime(utc, readElement(utc, 0)).toISOString(), '2049-12-31T23:59:59.000Z')
  const utc1950 = Buffer.concat([bytes(0x17, 13), Buffer.from('500101000000Z')])
  t.equal(readTime(utc1950, readElement(utc1950, 0)).toISOString(), '1950-01-01T00:00:00.000Z', 'RFC 5280: YY >= 50 is 19YY')
  const generalized = Buffer.concat([bytes(0x18, 15), Buffer.from('20500101000000Z')])
  t.equal(readTime(generalized, readElement(generalized, 0)).toISOString(), '2050-01-01T00:00:00.000Z')
  t.same(splitConcatenatedDer(bytes(0x30, 0x00, 0x30, 0x01, 0x05)).map(b => b.toString('hex')), ['3000', '300105'])
})
