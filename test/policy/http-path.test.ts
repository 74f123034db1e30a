import t from 'tap'
import { matchesPathPattern, normalizeRequestPath, parsePathPattern, pathPatternCovers } from '../../policy/http-path'
import type { PathPattern } from '../../policy/http-path'

// HTTP paths as the policy compares them: request paths normalized (or refused) before matching, and path
// patterns that must already be written normalized.

/** A pattern that must parse. */
function pattern (text: string): PathPattern {
  const parsed = parsePathPattern(text)
  if (typeof parsed === 'string') throw new Error(`${text}: ${parsed}`)
  return parsed
}

// Request targets and the path each is matched as, a test for each group.
const normalized: Array<[title: string, cases: Array<[target: string, path: string]>]> = [
  ['a request path loses its query and fragment', [
    ['/v1/items?limit=10', '/v1/items'],
    ['/v1/items#top', '/v1/items'],
    ['/v1/items?q=a#b', '/v1/items'],
    ['/v1/items#a?b', '/v1/items'],
    ['/v1/items?', '/v1/items'],
    ['/?x=/../admin', '/'],
    // The query is not matched, so what is in it is not checked either.
    ['/v1/items?q=%zz%2F\\ é', '/v1/items']
  ]],
  ['dot segments are removed, so /v1/../admin is /admin', [
    ['/v1/../admin', '/admin'],
    ['/a/./b', '/a/b'],
    ['/a/b/..', '/a/'],
    ['/a/b/../..', '/'],
    ['/a/b/.', '/a/b/'],
    ['/a/.', '/a/'],
    ['/..', '/'],
    ['/.', '/'],
    ['/../../etc/passwd', '/etc/passwd'],
    ['/v1/items/../../admin/users', '/admin/users'],
    ['/a/./b/../c/./d', '/a/c/d'],
    // Not dot segments: names that merely contain dots.
    ['/a/.../b', '/a/.../b'],
    ['/a/..b/.c', '/a/..b/.c'],
    ['/.well-known/x', '/.well-known/x']
  ]],
  ['repeated slashes are merged, before dot segments are removed', [
    ['//v1///items', '/v1/items'],
    ['/v1/items//', '/v1/items/'],
    ['//', '/'],
    ['/v1//../admin', '/admin'],
    ['/v1/.//./items', '/v1/items']
  ]],
  ['percent-escapes of unreserved characters are decoded, others kept in uppercase', [
    ['/%76%31/x', '/v1/x'],
    ['/%7euser', '/~user'],
    ['/%41%5a%61%7A%30%39%2D%2E%5F%7E', '/AZaz09-._~'],
    ['/a%3ab', '/a%3Ab'],
    ['/a%3Ab', '/a%3Ab'],
    ['/a%20b', '/a%20b'],
    ['/%e2%82%ac', '/%E2%82%AC'],
    // Decoded once only: %25 stays an escaped percent sign.
    ['/%2541', '/%2541'],
    ['/%25zz', '/%25zz'],
    // Dot segments written as escapes are dot segments all the same.
    ['/v1/%2E%2E/admin', '/admin'],
    ['/v1/%2e./admin', '/admin'],
    ['/v1/.%2e/admin', '/admin'],
    ['/v1/%2E/items', '/v1/items']
  ]],
  ['normal paths pass unchanged', ['/', '/v1/items', '/v1/items/', '/a-b_c.d~e/F', "/a:b@c!$&'()+,;=", '/a%3A'].map(path => [path, path])]
]
for (const [title, cases] of normalized) {
  void t.test(`http path – ${title}`, async t => {
    for (const [target, path] of cases) t.same(normalizeRequestPath(target), { path }, target)
  })
}

// Request targets refused, with the problem each group is refused with.
const refused: Array<[title: string, problem: string, targets: string[]]> = [
  ['refuses a request path that does not begin with /', 'the request path must begin with "/"',
    ['', 'v1/items', '*', 'http://plant.example/v1/items', '?x', '#x', ' /v1']],
  ['refuses encoded slashes and backslashes', 'encoded slashes and backslashes are refused in request paths',
    ['/v1%2Fadmin', '/v1%2fadmin', '/v1/%5Cadmin', '/v1/%5cadmin', '/v1\\admin', '/v1/..\\admin', '/%2F']],
  ['refuses a malformed percent-escape', 'the request path has a malformed percent-escape',
    ['/a%zz', '/a%2', '/a%', '/a%g0', '/%%41']],
  ['refuses spaces, control characters and non-ASCII', 'the request path contains characters other than visible ASCII (percent-encode them)',
    ['/a b', '/a\tb', '/a\nb', '/a\u0000b', '/a\u007f', '/caf\u00e9', '/\u{1F600}', '/a\r']]
]
for (const [title, problem, targets] of refused) {
  void t.test(`http path – ${title}`, async t => {
    for (const target of targets) t.same(normalizeRequestPath(target), { problem }, JSON.stringify(target))
  })
}

void t.test('http path – a pattern is exact, or a prefix when it ends in *', async t => {
  const cases: Array<[string, PathPattern]> = [
    ['/v1/items', { exact: '/v1/items' }],
    ['/', { exact: '/' }],
    ['/v1/items/', { exact: '/v1/items/' }],
    ['/a%3A', { exact: '/a%3A' }],
    ['/v1/*', { prefix: '/v1/' }],
    ['/*', { prefix: '/' }],
    ['/v1*', { prefix: '/v1' }],
    ['/.well-known/*', { prefix: '/.well-known/' }]
  ]
  for (const [text, parsed] of cases) t.same(parsePathPattern(text), parsed, text)
})

void t.test('http path – refuses a pattern that is not written normalized, saying what to write', async t => {
  const cases: Array<[string, RegExp]> = [
    ['/v1/*/items', /^\* is only allowed at the end of a path, as a prefix \(\/v1\/\*\)$/],
    ['/v1/**', /^\* is only allowed at the end/],
    ['*', /^a path pattern must begin with "\/"$/],
    ['v1/*', /^a path pattern must begin with "\/"$/],
    ['', /^a path pattern must begin with "\/"$/],
    ['/v1?x', /^a path pattern cannot contain a query or fragment/],
    ['/v1#x', /^a path pattern cannot contain a query or fragment/],
    ['/v1?*', /^a path pattern cannot contain a query or fragment/],
    ['/a/../b', /^paths are compared normalized: write "\/b"$/],
    ['/v1/../*', /^paths are compared normalized: write "\/\*"$/],
    ['//a', /^paths are compared normalized: write "\/a"$/],
    ['/a//*', /^paths are compared normalized: write "\/a\/\*"$/],
    ['/a/./b', /^paths are compared normalized: write "\/a\/b"$/],
    ['/%76%31', /^paths are compared normalized: write "\/v1"$/],
    ['/a%3a', /^paths are compared normalized: write "\/a%3A"$/],
    ['/a%2F', /^encoded slashes and backslashes are refused/],
    ['/a\\b', /^encoded slashes and backslashes are refused/],
    ['/a%zz', /^a path pattern has a malformed percent-escape$/],
    ['/a b', /^a path pattern contains characters other than visible ASCII/]
  ]
  for (const [text, reason] of cases) {
    const parsed = parsePathPattern(text)
    t.type(parsed, 'string', `${JSON.stringify(text)} is refused`)
    t.match(parsed, reason, JSON.stringify(text))
  }
})

void t.test('http path – an exact pattern matches only its path; a prefix matches every path starting with it', async t => {
  const cases: Array<[string, string[], string[]]> = [
    ['/v1/items', ['/v1/items'], ['/v1/items/', '/v1/item', '/v1/items/1', '/V1/items', '/']],
    ['/v1/*', ['/v1/', '/v1/items', '/v1/a/b/c'], ['/v1', '/v10', '/v2/items', '/']],
    ['/v1*', ['/v1', '/v10', '/v1/items'], ['/v', '/v2']],
    ['/*', ['/', '/anything/at/all'], []],
    ['/', ['/'], ['/v1']]
  ]
  for (const [text, matching, other] of cases) {
    const parsed = pattern(text)
    for (const path of matching) t.ok(matchesPathPattern(parsed, path), `${text} matches ${path}`)
    for (const path of other) t.notOk(matchesPathPattern(parsed, path), `${text} does not match ${path}`)
  }
})

void t.test('http path – a request is matched by its normalized path, so dot segments cannot escape a prefix', async t => {
  const v1 = pattern('/v1/*')
  const admin = pattern('/admin')
  for (const target of ['/v1/../admin', '/v1/%2E%2E/admin', '/v1/./../admin?x=1', '//v1/..//admin']) {
    const normalized = normalizeRequestPath(target)
    if (!('path' in normalized)) {
      t.fail(`${target} refused: ${normalized.problem}`)
      continue
    }
    t.notOk(matchesPathPattern(v1, normalized.path), `${target} is not under /v1/`)
    t.ok(matchesPathPattern(admin, normalized.path), `${target} is /admin`)
  }
  const encoded = normalizeRequestPath('/%76%31/items')
  t.ok('path' in encoded && matchesPathPattern(v1, encoded.path), 'an encoded /v1/ is under /v1/')
})

void t.test('http path – a pattern covers another when it matches every path the other matches', async t => {
  const cases: Array<[string, string, boolean]> = [
    ['/v1/*', '/v1/items', true],
    ['/v1/*', '/v1/', true],
    ['/v1/*', '/v1/a/*', true],
    ['/v1/*', '/v1/*', true],
    ['/*', '/anything', true],
    ['/*', '/v1/*', true],
    ['/v1*', '/v10/*', true],
    ['/v1/items', '/v1/items', true],
    ['/v1/*', '/v1', false],
    ['/v1/*', '/v2/*', false],
    ['/v1/*', '/v*', false],
    ['/v1/a/*', '/v1/*', false],
    ['/v1/items', '/v1/items/', false],
    ['/v1/', '/v1/*', false],
    ['/v1/items', '/v1/*', false]
  ]
  for (const [outer, inner, covers] of cases) {
    t.equal(pathPatternCovers(pattern(outer), pattern(inner)), covers, `${outer} ${covers ? 'covers' : 'does not cover'} ${inner}`)
  }
})

void t.test('http path – a prefix pattern cannot end in a dot segment, and a pattern\'s errors speak of patterns', async t => {
  // "/v1/..*" would normalize to "/*": suggesting that would allow far more than was written.
  t.equal(parsePathPattern('/v1/..*'), 'a prefix cannot end in a "." or ".." segment')
  t.equal(parsePathPattern('/v1/.*'), 'a prefix cannot end in a "." or ".." segment')
  t.same(parsePathPattern('/v1/..x*'), { prefix: '/v1/..x' }, 'a segment that only starts with dots is plain text')
  t.equal(parsePathPattern('/a%2Fb'), 'encoded slashes and backslashes are refused in path patterns')
})
