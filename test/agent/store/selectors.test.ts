import t from 'tap'
import { formatSelector, parseSelector } from '../../../agent/store'
import { normalizeSelectors } from '../../../agent/store/selectors'
import { thrown } from '../../helpers/errors'

const HASH = 'a'.repeat(64)

void t.test('selectors – every supported form parses, splitting the type at the first colon, and formats back', async t => {
  const valid = [
    'unix:uid:0', 'unix:uid:1001', 'unix:uid:4294967295', 'unix:gid:50', 'unix:user:www-data', 'unix:group:staff',
    'unix:supplementary_gid:27', 'unix:supplementary_group:sudo', 'unix:path:/usr/bin/python3.11', `unix:sha256:${HASH}`,
    'docker:label:com.example.app:frontend', 'docker:label:empty:', 'docker:label:k:v:with:colons',
    'docker:image_id:sha256:0123abc', 'docker:env:ROLE=api', 'docker:env:EMPTY=', `docker:container_id:${HASH}`
  ]
  for (const text of valid) {
    const selector = parseSelector(text)
    t.equal(formatSelector(selector), text, text)
  }
  t.same(parseSelector('unix:uid:1001'), { type: 'unix', value: 'uid:1001' })
  t.same(parseSelector('docker:label:a:b'), { type: 'docker', value: 'label:a:b' })
  t.ok(Object.isFrozen(parseSelector('unix:uid:1')), 'selectors are frozen')
})

void t.test('selectors – bad selectors are ERR_SELECTOR_INVALID naming the problem', async t => {
  const cases: Array<[string, RegExp]> = [
    ['', /unknown selector type ""; supported: unix:uid:N, .*docker:container_id:HEX/],
    ['k8s:ns:default', /unknown selector type "k8s"/],
    ['UNIX:uid:1', /unknown selector type "UNIX"/],
    ['unix', /unknown unix selector ""/],
    ['unix:pid:1', /unknown unix selector "pid"; supported: unix:uid:N/],
    ['docker:name:web', /unknown docker selector "name"/],
    ['unix:uid', /unix:uid is missing its value/],
    ['unix:uid:', /unix:uid must be a decimal number from 0 to 4294967295/],
    ['unix:uid:-1', /decimal number/],
    ['unix:uid:+1', /decimal number/],
    ['unix:uid:01', /without sign or leading zeros/],
    ['unix:uid:1.5', /decimal number/],
    ['unix:uid:4294967296', /from 0 to 4294967295/],
    ['unix:gid:abc', /unix:gid must be a decimal number/],
    ['unix:supplementary_gid:99999999999999999999', /decimal number/],
    ['unix:user:', /unix:user must be a non-empty name/],
    ['unix:user:a b', /without spaces/],
    ['unix:group:a:b', /or ":"/],
    ['unix:supplementary_group:', /non-empty name/],
    ['unix:path:bin/sh', /unix:path must be an absolute, normalised path/],
    ['unix:path:/usr/bin/../bin/sh', /normalised/],
    ['unix:path:/usr//bin/sh', /normalised/],
    ['unix:path:/usr/bin/', /trailing/],
    ['unix:path:', /absolute/],
    ['unix:sha256:ABCDEF', /unix:sha256 must be 64 lowercase hexadecimal digits/],
    [`unix:sha256:${'A'.repeat(64)}`, /64 lowercase hexadecimal/],
    [`unix:sha256:${HASH}0`, /64 lowercase hexadecimal/],
    ['docker:label:novalue', /docker:label must be KEY:VALUE with a non-empty KEY/],
    ['docker:label::value', /non-empty KEY/],
    ['docker:image_id:', /docker:image_id must not be empty/],
    ['docker:env:NOEQUALS', /docker:env must be VAR=VALUE/],
    ['docker:env:=value', /non-empty VAR/],
    ['docker:container_id:abc123', /docker:container_id must be 64 lowercase hexadecimal digits/],
    ['unix:user:bob\n', /control characters are not allowed/],
    ['unix:path:/bin/sh\u0000', /control characters/]
  ]
  for (const [text, reason] of cases) {
    const err = thrown(() => parseSelector(text))
    t.equal(err.code, 'ERR_SELECTOR_INVALID', JSON.stringify(text))
    t.match(err.message, reason, JSON.stringify(text))
  }
  t.match(thrown(() => parseSelector(42 as unknown as string)), { code: 'ERR_SELECTOR_INVALID', message: /must be a string/ })
  t.match(thrown(() => parseSelector(`unix:user:${'x'.repeat(5000)} y`)).message, /\.\.\."/, 'long input is shortened')
})

void t.test('selectors – lists are validated, de-duplicated and sorted by type, then value', async t => {
  const sorted = normalizeSelectors(['unix:uid:1001', 'docker:env:A=1', { type: 'unix', value: 'gid:50' }, 'unix:uid:1001'])
  t.same(sorted.map(formatSelector), ['docker:env:A=1', 'unix:gid:50', 'unix:uid:1001'])
  t.match(thrown(() => normalizeSelectors([{ type: 'unix', value: 'uid:x' }])), { code: 'ERR_SELECTOR_INVALID' })
  t.match(thrown(() => normalizeSelectors([{ type: 'unix' } as never])), { code: 'ERR_SELECTOR_INVALID', message: /string "type" and "value"/ })
  t.match(thrown(() => normalizeSelectors([null as never])), { code: 'ERR_SELECTOR_INVALID' })
})
