/**
 * Shapes of a chunked body (RFC 9112 §7.1): chunk sizes with spaces, signs, `0x` and values past 64 bits;
 * extensions with quotes and bytes they may not hold; bare LF and CR where CRLF belongs; a last chunk and a
 * trailer section that do not end as they should; trailers naming identity and framing fields.
 */
import { field } from './draft'
import type { ChunkOptions } from './draft'
import { BOTH, chunkBody, hex, shapes } from './shape'
import type { Shape } from './shape'
import type { Random } from './random'

/** A chunked body whose every chunk size line is written by `size`. */
function sizes (name: string, size: (r: Random, length: number) => string): Shape[] {
  return shapes(name, BOTH, (r, m) => { chunkBody(r, m, { size: length => size(r, length) }) })
}

function chunkShape (name: string, options: (r: Random) => ChunkOptions): Shape[] {
  return shapes(name, BOTH, (r, m) => { chunkBody(r, m, options(r)) })
}

const BAD_EXTENSIONS = [';a="b', ';a="b\\"c"', ';a=b"c"', ';"a"=b', ';a="\x7f"', ';a="\\\x01"', ';a="b\x00"', ';a=b c', ';a\x00', ';a=\x7f', ';=b', ';a=', ';a;;b',
  '; a', ';a =b', ';a= b', ';a=b;', ';a=b,c', ';a=\xa0', ';a\x0b', ';', ';a="\r"', ';a="\n"', ';a=\r', ' ;a', '\t;a', ';a="x"y', ';a="\\', ';a=""']
const TRAILER_FIELDS = ['X-Forwarded-Client-Cert: URI=spiffe://example.org/evil', 'Host: evil.example', 'Forwarded: for=192.0.2.1', 'Content-Length: 5', 'Content-Length: 0',
  'Transfer-Encoding: chunked', 'Transfer-Encoding: gzip', 'Connection: close', 'Upgrade: websocket', 'Trailer: X-Checksum', 'content-length: 3', 'TRANSFER-ENCODING: chunked']
const MALFORMED_TRAILERS = ['X : y', ' folded', 'X: a\x00b', 'X:\x7f', 'X', ': v', 'X: a\nY: b', 'X: a\rY: b', 'X\t: y', '\tX: y', 'X: \xa0']

export const CHUNK_SHAPES: Shape[] = [
  ...sizes('chunk-size-whitespace', (r, length) => r.pick([`${hex(length)} `, ` ${hex(length)}`, `${hex(length)}\t`, `${hex(length)}\x0b`, `${hex(length)}\xa0`, `${hex(length)} ;a`])),
  ...sizes('chunk-size-sign', (r, length) => `${r.pick(['+', '-'])}${hex(length)}`),
  ...sizes('chunk-size-0x', (r, length) => `${r.pick(['0x', '0X', 'x'])}${hex(length)}`),
  ...sizes('chunk-size-huge', (r, length) => r.pick([
    'f'.repeat(r.between(13, 17)), `1${'0'.repeat(16)}${hex(length)}`, `${'0'.repeat(r.between(10, 30))}${hex(length)}`, `${'0'.repeat(r.between(1, 3))}1${'0'.repeat(13)}`, 'fffffffffffff'])),
  ...sizes('chunk-size-not-hex', (r, length) => r.pick([`${hex(length)}g`, `${hex(length)}.0`, `${hex(length)},`, '', `${hex(length)}${hex(length)}`, `${hex(length)}\x00`])),
  ...sizes('chunk-extension-quotes', (r, length) => `${hex(length)}${r.pick(BAD_EXTENSIONS.slice(0, 7))}`),
  ...sizes('chunk-extension-bad-byte', (r, length) => `${hex(length)}${r.pick(BAD_EXTENSIONS)}`),
  ...chunkShape('chunk-data-bare-lf', r => ({ dataEnd: r.pick(['\n', '\r', '', 'X\r\n', '\r\r\n', '\n\r', ' \r\n']) })),
  ...chunkShape('chunk-size-bare-lf', r => ({ sizeEnd: r.pick(['\n', '\r', '\r\r\n', '\n\r', '\n\r\n']) })),
  ...chunkShape('last-chunk', r => ({
    lastChunk: r.pick(['0 ', ' 0', '0\t', '-0', '+0', '0x0', '0;', '0;a=', '00000000000000000000', '0\n', '0\r\r', 'O', '0\x00']),
    ...(r.chance(0.3) ? { trailers: [] } : {})
  })),
  ...chunkShape('trailer-identity-or-framing', r => ({ trailers: [r.pick(TRAILER_FIELDS), ...(r.chance(0.3) ? [r.pick(TRAILER_FIELDS)] : [])] })),
  ...chunkShape('trailer-malformed', r => ({ trailers: [r.pick(MALFORMED_TRAILERS)] })),
  ...shapes('trailer-section-unended', BOTH, (r, m) => {
    chunkBody(r, m, { trailers: [] })
    m.body = m.body.slice(0, -2) + r.pick(['\n', '\r', '', 'X: y\r\n', '\r\n\r\n'])
    if (r.chance(0.3)) m.fields.push(field(r, 'Trailer', 'X'))
  })
]
