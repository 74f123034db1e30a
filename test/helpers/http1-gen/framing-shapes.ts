/**
 * Shapes of the framing fields (RFC 9112 §6): Content-Length and Transfer-Encoding together, twice, as lists, with
 * signs, spaces and look-alike bytes; codings other than chunked, chunked twice or not last, Transfer-Encoding in
 * HTTP/1.0; and Connection options that name framing, routing or identity fields.
 */
import { field, insertField } from './draft'
import { BOTH, chunkBody, lengthBody, placeNear, plain, REQUEST, shapes } from './shape'
import type { Shape } from './shape'

const TE = /^transfer-encoding/i
const CL = /^content-length/i

const LENGTH_SPELLINGS = ['+N', '-N', 'N N', 'N\t', ' N', 'N,', ',N', '0xN', 'N.0', '0N', '00N', 'Na', 'N;', '', '1eN', 'N\x0b', 'N\x0c', '\xa0N', 'N\xa0', 'N\x00',
  '99999999999999999999', '18446744073709551617', '9007199254740993', '000000000000000000N', '"N"']
const CODING_ODDITIES = ['chunked\xa0', 'chunked\x0b', 'chunked\x0c', 'chunked ', 'chunked\t', 'chunked,', 'chunked, ', ',chunked', ' chunked', '\x0bchunked', '\xa0chunked',
  'chunked\x00', 'chunked\x85', '"chunked"', 'chunked;q=1', 'x-chunked', 'chunked-x', 'chunk', 'identity', 'identity, chunked', 'chunked, identity', 'CHUNKED']

export const FRAMING_SHAPES: Shape[] = [
  ...shapes('connection-content-length', BOTH, (r, m) => {
    lengthBody(r, m)
    insertField(r, m, field(r, 'Connection', r.pick(['Content-Length', 'content-length', 'keep-alive, Content-Length', 'Content-Length, close', 'x, CONTENT-LENGTH'])))
  }),
  ...shapes('connection-transfer-encoding', BOTH, (r, m) => {
    chunkBody(r, m)
    insertField(r, m, field(r, 'Connection', r.pick(['Transfer-Encoding', 'transfer-encoding, keep-alive', 'close, Transfer-Encoding'])))
  }),
  ...shapes('connection-host', REQUEST, (r, m) => { insertField(r, m, field(r, 'Connection', r.pick(['Host', 'host', 'keep-alive, host']))) }),
  ...shapes('connection-x-forwarded-client-cert', BOTH, (r, m) => {
    insertField(r, m, field(r, 'X-Forwarded-Client-Cert', 'URI=spiffe://example.org/evil'))
    insertField(r, m, field(r, 'Connection', r.pick(['X-Forwarded-Client-Cert', 'x-forwarded-client-cert', 'keep-alive, X-Forwarded-Client-Cert'])))
  }),
  ...shapes('content-length-then-transfer-encoding', BOTH, (r, m) => {
    chunkBody(r, m)
    placeNear(m, TE, field(r, 'Content-Length', r.pick([String(m.body.length), '0', String(r.between(1, m.body.length))])), false)
  }),
  ...shapes('transfer-encoding-then-content-length', BOTH, (r, m) => {
    chunkBody(r, m)
    placeNear(m, TE, field(r, 'Content-Length', r.pick([String(m.body.length), '0', String(r.between(1, m.body.length))])), true)
  }),
  ...shapes('content-length-twice-equal', BOTH, (r, m) => {
    const length = lengthBody(r, m)
    placeNear(m, CL, field(r, r.spelling('Content-Length'), String(length)), r.chance(0.5))
  }),
  ...shapes('content-length-twice-different', BOTH, (r, m) => {
    const length = lengthBody(r, m)
    placeNear(m, CL, field(r, 'Content-Length', String(r.pick([0, length - 1, length + 1, length * 2]))), r.chance(0.5))
  }),
  ...shapes('content-length-list', BOTH, (r, m) => {
    lengthBody(r, m, length => r.pick([`${length}, ${length}`, `${length},${length}`, `${length}, ${length + 1}`, `${length} ,${length}`, `${length},`]))
  }),
  ...shapes('content-length-sign-space', BOTH, (r, m) => {
    lengthBody(r, m, length => r.pick(LENGTH_SPELLINGS).replace(/N/g, String(length)))
  }),
  ...shapes('chunked-chunked', BOTH, (r, m) => {
    if (r.chance(0.5)) chunkBody(r, m, {}, r.pick(['chunked, chunked', 'chunked,chunked', 'chunked , chunked']))
    else {
      chunkBody(r, m)
      placeNear(m, TE, field(r, 'Transfer-Encoding', 'chunked'), r.chance(0.5))
    }
  }),
  ...shapes('gzip-chunked', BOTH, (r, m) => {
    if (r.chance(0.7)) chunkBody(r, m, {}, r.pick(['gzip, chunked', 'gzip,chunked', 'deflate, chunked']))
    else {
      chunkBody(r, m)
      placeNear(m, TE, field(r, 'Transfer-Encoding', 'gzip'), false)
    }
  }),
  ...shapes('chunked-gzip', BOTH, (r, m) => {
    if (r.chance(0.7)) chunkBody(r, m, {}, r.pick(['chunked, gzip', 'chunked,gzip', 'chunked, identity']))
    else {
      chunkBody(r, m)
      placeNear(m, TE, field(r, 'Transfer-Encoding', 'gzip'), true)
    }
  }),
  ...shapes('chunked-look-alike', BOTH, (r, m) => { chunkBody(r, m, {}, r.pick(CODING_ODDITIES)) }),
  ...shapes('transfer-encoding-in-http-1.0', BOTH, (r, _) => {
    const m = plain(r, _.kind, 0)
    chunkBody(r, m)
    if (r.chance(0.3)) placeNear(m, TE, field(r, 'Content-Length', String(m.body.length)), false)
    return m
  }),
  ...shapes('transfer-encoding-empty', BOTH, (r, m) => {
    lengthBody(r, m)
    insertField(r, m, field(r, 'Transfer-Encoding', r.pick(['', ',', ' , '])))
  })
]
