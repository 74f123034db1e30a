import t from 'tap'
import { SpiffeId, TrustDomain, parseSpiffeId, parseTrustDomain, MAX_SPIFFE_ID_BYTES, MAX_TRUST_DOMAIN_BYTES } from '../../spiffe/id'
import { thrown } from '../helpers/errors'

const validIds: Array<[string, string, string]> = [
  ['spiffe://example.org', 'example.org', ''],
  ['spiffe://example.org/workload', 'example.org', '/workload'],
  ['spiffe://example.org/ns/prod/sa/api', 'example.org', '/ns/prod/sa/api'],
  ['spiffe://a', 'a', ''],
  ['spiffe://under_score-dash.0123/A-Z_a.z-09', 'under_score-dash.0123', '/A-Z_a.z-09'],
  ['spiffe://example.org/.a/..a/.../a.', 'example.org', '/.a/..a/.../a.'],
  ['spiffe://example.org/CaseSensitive', 'example.org', '/CaseSensitive']
]

void t.test('spiffe id – parses valid IDs into trust domain and path, canonical round trip', async t => {
  for (const [text, td, path] of validIds) {
    const id = parseSpiffeId(text)
    t.equal(id.trustDomain.name, td, `${text} trust domain`)
    t.equal(id.path, path, `${text} path`)
    t.equal(id.toString(), text, `${text} round trip`)
    t.equal(JSON.stringify(id), JSON.stringify(text), `${text} JSON`)
  }
})

const invalidIds: Array<[string, RegExp]> = [
  ['', /cannot be empty/],
  ['example.org/workload', /scheme is missing or invalid/],
  ['SPIFFE://example.org/workload', /scheme is missing or invalid/],
  ['Spiffe://example.org', /scheme is missing or invalid/],
  ['https://example.org/workload', /scheme is missing or invalid/],
  ['spiffe:/example.org', /scheme is missing or invalid/],
  ['spiffe://', /trust domain is missing/],
  ['spiffe:///workload', /trust domain is missing/],
  ['spiffe://Example.org', /lowercase letters.*must be lowercase/],
  ['spiffe://example.org:8080/workload', /lowercase letters.*a port is not allowed/],
  ['spiffe://user@example.org/workload', /lowercase letters.*userinfo is not allowed/],
  ['spiffe://user:pass@example.org', /a port is not allowed/],
  ['spiffe://exa%6dple.org', /percent-encoding is not allowed/],
  ['spiffe://example.org?query', /a query is not allowed/],
  ['spiffe://example.org#frag', /a fragment is not allowed/],
  ['spiffe://example.org/', /trailing slash/],
  ['spiffe://example.org/a/', /trailing slash/],
  ['spiffe://example.org//a', /empty segments/],
  ['spiffe://example.org/a//b', /empty segments/],
  ['spiffe://example.org/.', /dot segments/],
  ['spiffe://example.org/..', /dot segments/],
  ['spiffe://example.org/a/./b', /dot segments/],
  ['spiffe://example.org/a/../b', /dot segments/],
  ['spiffe://example.org/a?x=1', /path segment characters.*a query is not allowed/],
  ['spiffe://example.org/a#frag', /path segment characters.*a fragment is not allowed/],
  ['spiffe://example.org/a%20b', /path segment characters.*percent-encoding is not allowed/],
  ['spiffe://example.org/a b', /path segment characters.*U\+0020/],
  ['spiffe://example.org/caf\u00e9', /path segment characters.*U\+00E9/],
  ['spiffe://ex\u00e4mple.org/a', /trust domain characters.*U\+00E4/],
  ['spiffe://example.org/a:b', /path segment characters/],
  ['spiffe://example.org/a\u0000', /U\+0000/],
  [` spiffe://example.org/a`, /scheme is missing/],
  ['spiffe://example.org/a\n', /U\+000A/]
]

void t.test('spiffe id – rejects every rule violation with ERR_SPIFFE_ID_INVALID naming the rule', async t => {
  for (const [text, reason] of invalidIds) {
    const err = thrown(() => parseSpiffeId(text))
    t.equal(err.code, 'ERR_SPIFFE_ID_INVALID', `${JSON.stringify(text)} code`)
    t.match(err.message, reason, `${JSON.stringify(text)} reason`)
  }
})

void t.test('spiffe id – every byte value in a trust-domain position', async t => {
  const allowed = new Set('abcdefghijklmnopqrstuvwxyz0123456789.-_')
  for (let b = 0; b < 256; b++) {
    const c = String.fromCharCode(b)
    const idText = `spiffe://ex${c}ample/a`
    const ok = allowed.has(c)
    if (ok) {
      t.equal(parseSpiffeId(idText).trustDomain.name, `ex${c}ample`, `byte ${b} accepted in an ID`)
      t.equal(parseTrustDomain(`ex${c}ample`).name, `ex${c}ample`, `byte ${b} accepted as a trust domain`)
    } else {
      if (c === '/') {
        t.equal(parseSpiffeId(idText).trustDomain.name, 'ex', 'byte 47 ends the trust domain in an ID')
      } else {
        const err = thrown(() => parseSpiffeId(idText))
        t.equal(err.code, 'ERR_SPIFFE_ID_INVALID', `byte ${b} rejected in an ID`)
        t.match(err.message, /trust domain/, `byte ${b}: reason names the trust domain rule`)
      }
      const tdErr = thrown(() => parseTrustDomain(`ex${c}ample`))
      t.equal(tdErr.code, 'ERR_TRUST_DOMAIN_INVALID', `byte ${b} rejected as a trust domain`)
    }
  }
})

void t.test('spiffe id – every byte value in a path position', async t => {
  const allowed = new Set('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_')
  for (let b = 0; b < 256; b++) {
    const c = String.fromCharCode(b)
    const idText = `spiffe://example.org/pa${c}th`
    if (allowed.has(c)) {
      t.equal(parseSpiffeId(idText).path, `/pa${c}th`, `byte ${b} accepted`)
    } else if (c === '/') {
      t.equal(parseSpiffeId(idText).path, '/pa/th', 'byte 47 separates segments')
    } else {
      const err = thrown(() => parseSpiffeId(idText))
      t.equal(err.code, 'ERR_SPIFFE_ID_INVALID', `byte ${b} rejected`)
      t.match(err.message, /path segment characters are limited/, `byte ${b} names the path rule`)
    }
  }
})

void t.test('spiffe id – length limits: 2048 bytes for an ID, 255 for a trust domain', async t => {
  const td = 'example.org'
  const room = MAX_SPIFFE_ID_BYTES - `spiffe://${td}/`.length
  const longest = `spiffe://${td}/${'a'.repeat(room)}`
  t.equal(longest.length, MAX_SPIFFE_ID_BYTES)
  t.equal(parseSpiffeId(longest).toString(), longest, 'an ID of exactly 2048 bytes is accepted')
  t.match(thrown(() => parseSpiffeId(longest + 'a')).message, /maximum length of 2048 bytes/)
  const maxTd = 'd'.repeat(MAX_TRUST_DOMAIN_BYTES)
  t.equal(parseTrustDomain(maxTd).name, maxTd, 'a 255-byte trust domain is accepted')
  t.equal(parseSpiffeId(`spiffe://${maxTd}/w`).trustDomain.name, maxTd)
  t.match(thrown(() => parseTrustDomain(maxTd + 'd')).message, /exceeds 255 bytes/)
  t.match(thrown(() => parseSpiffeId(`spiffe://${maxTd}d/w`)).message, /exceeds 255 bytes/)
  t.equal(thrown(() => parseSpiffeId(`spiffe://${maxTd}d/w`)).code, 'ERR_SPIFFE_ID_INVALID')
  const huge = `spiffe://example.org/${'x'.repeat(100_000)}?`
  t.ok(thrown(() => parseSpiffeId(huge)).message.length < 400, 'a hostile long input yields a short message')
})

void t.test('trust domain – from a name or from any ID in it; errors carry ERR_TRUST_DOMAIN_INVALID', async t => {
  t.equal(parseTrustDomain('example.org').name, 'example.org')
  t.equal(parseTrustDomain('spiffe://example.org').name, 'example.org')
  t.equal(parseTrustDomain('spiffe://example.org/a/b').name, 'example.org')
  t.equal(parseTrustDomain('example.org').idString, 'spiffe://example.org')
  for (const [text, reason] of [
    ['', /trust domain is missing/],
    ['Example.org', /must be lowercase/],
    ['example.org:443', /a port is not allowed/],
    ['spiffe://example.org/', /trailing slash/],
    ['SPIFFE://example.org', /scheme is missing/],
    ['https://example.org', /scheme is missing/]
  ] as Array<[string, RegExp]>) {
    const err = thrown(() => parseTrustDomain(text))
    t.equal(err.code, 'ERR_TRUST_DOMAIN_INVALID', `${JSON.stringify(text)} code`)
    t.match(err.message, reason, `${JSON.stringify(text)} reason`)
  }
  t.equal(thrown(() => parseSpiffeId(42 as unknown as string)).code, 'ERR_SPIFFE_ID_INVALID', 'non-string input')
})

void t.test('spiffe id – membership, equality and building IDs from a trust domain', async t => {
  const id = parseSpiffeId('spiffe://example.org/api')
  const td = parseTrustDomain('example.org')
  t.ok(id.memberOf(td))
  t.ok(id.memberOf('example.org'))
  t.notOk(id.memberOf('example.com'))
  t.notOk(parseSpiffeId('spiffe://example.org.evil/api').memberOf(td), 'a longer name is another trust domain')
  t.ok(id.equals('spiffe://example.org/api'))
  t.ok(id.equals(parseSpiffeId('spiffe://example.org/api')))
  t.notOk(id.equals('spiffe://example.org/API'), 'paths are case-sensitive')
  t.ok(id.hasPath)
  t.notOk(parseSpiffeId('spiffe://example.org').hasPath)
  t.ok(td.equals(parseTrustDomain('spiffe://example.org/x')))
  t.equal(td.id('/ns/prod').toString(), 'spiffe://example.org/ns/prod')
  t.equal(td.id('').toString(), 'spiffe://example.org')
  t.match(thrown(() => td.id('ns/prod')).message, /must begin with/)
  t.match(thrown(() => td.id('/ns/../x')).message, /dot segments/)
  t.match(thrown(() => td.id('/' + 'a'.repeat(2048))).message, /maximum length/)
})

void t.test('spiffe id – IDs and trust domains can only be made by the parsers, so they are always valid', async t => {
  type Forge = new (...args: unknown[]) => unknown
  t.throws(() => new (TrustDomain as unknown as Forge)('EVIL/..', Symbol('validated by spiffe/id')), TypeError)
  t.throws(() => new (SpiffeId as unknown as Forge)(parseTrustDomain('example.org'), '//x'), /use parseSpiffeId/)
  t.equal(String(parseTrustDomain('example.org')), 'example.org')
  t.equal(JSON.stringify({ td: parseTrustDomain('example.org') }), '{"td":"example.org"}')
})
