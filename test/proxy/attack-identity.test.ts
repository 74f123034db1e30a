import t from 'tap'
import type { Test } from 'tap'
import { X509Certificate } from 'node:crypto'
import { parseXfcc } from '../../spiffe/peer-header'
import { bytesSince, expectRefusal, fieldPairs, jsonBody, servesNormally, startAttackStand, valuesOf } from '../helpers/attack-stand'
import type { AttackStand, Direction } from '../helpers/attack-stand'
import { sha256 } from '../helpers/http-stand'
import type { AppRequest } from '../helpers/http-stand'
import { TD } from '../helpers/mesh'
import { chunked } from '../helpers/raw-http'

// The caller's identity as the app learns it, attacked in both directions (a peer over mutual TLS straight to the
// server sidecar's inbound listener; the local app through the client sidecar's outbound listener): the sidecar's
// X-Forwarded-Client-Cert comes first, whatever the client sent under identity names (any case, underscores,
// Forwarded) is gone, trailers cannot carry identity or framing, and request targets are refused unless every
// byte is one RFC 9112 and RFC 3986 allow, so no part of the stack reads a different path from the policy's.

let stand: AttackStand
t.before(async () => { stand = await startAttackStand() })
t.teardown(async () => { await stand.close() })

const IDENTITY = ['x-forwarded-client-cert', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-port']
/** A field name as the identity check compares it: lower case, underscores as dashes (as some servers fold them). */
const folded = (name: string): string => name.toLowerCase().replace(/_/g, '-')
const isIdentity = (name: string): boolean => [...IDENTITY, 'forwarded'].includes(folded(name))
const spoofs = (n: number): string[] => [
  `X-Forwarded-Client-Cert: By=${TD}/server;URI=${TD}/spoof-${n}`, `x_forwarded_client_cert: URI=${TD}/spoof-${n}`,
  'X-FORWARDED-FOR: 6.6.6.6', 'x_forwarded_for: 6.6.6.6', 'X-Forwarded-Proto: spoof', 'X_FORWARDED_PROTO: spoof',
  'x-forwarded-port: 6', 'X_Forwarded_Port: 6', 'Forwarded: for=6.6.6.6;proto=spoof', 'FORWARDED: by=spoof'
]

/** Sends `head` (and `body`) on a new connection to `direction`'s app listener; the request the app saw for `path`. */
async function atApp (t: Test, direction: Direction, path: string, head: string[]): Promise<AppRequest | undefined> {
  const connection = await direction.open(t, 'app')
  connection.write(`${head.join('\r\n')}\r\n\r\n`)
  const response = await connection.response(false, 3000)
  t.equal(response.status, 200, `${direction.name} ${path}: ${response.status} ${JSON.stringify(jsonBody(response) ?? '')}`)
  return stand.app.seen.find(request => request.url === path)
}

/** An X-Forwarded-Client-Cert value parsed, or why it does not parse. */
function xfcc (value = ''): unknown {
  try {
    return parseXfcc(value)
  } catch (err) {
    return (err as Error).message
  }
}

/** The identity fields the app saw: the sidecar's four, first and in order, with the values it alone can know. */
async function checkIdentity (t: Test, direction: Direction, seen: AppRequest | undefined): Promise<void> {
  const fields = fieldPairs(seen?.rawHeaders ?? [])
  t.same(fields.slice(0, 4).map(([name]) => name.toLowerCase()), IDENTITY, `${direction.name}: X-Forwarded-Client-Cert first, then -For, -Proto, -Port`)
  t.same(fields.filter(([name]) => isIdentity(name)).map(([name]) => folded(name)), IDENTITY, `${direction.name}: each once, no Forwarded, under no spelling`)
  const leaf = new X509Certificate((await stand.mesh.svid(`${TD}/client`)).certPem)
  t.same(xfcc(fields[0]?.[1]), [{ by: `${TD}/server`, hash: sha256(leaf.raw), uri: `${TD}/client` }], `${direction.name}: the verified caller`)
  // The port the caller called: the sidecar's listener; handed over in node mode, the app's own port.
  const called = direction.name === 'same-device' ? stand.app.port : stand.server.port('app')
  t.same(fields.slice(1, 4).map(([, value]) => value), ['127.0.0.1', 'https', String(called)], `${direction.name}: the sidecar's -For, -Proto, -Port`)
  t.notMatch(JSON.stringify(fields), /spoof|6\.6\.6\.6/, `${direction.name}: no spoofed value`)
}

void t.test('attack identity – the app gets the sidecar\'s X-Forwarded-Client-Cert first, then -For, -Proto, -Port; spoofs under any spelling and Forwarded are gone', async t => {
  for (const direction of stand.directions) {
    const path = `/public/who-${direction.name}`
    await checkIdentity(t, direction, await atApp(t, direction, path, [`GET ${path} HTTP/1.1`, 'Host: backend.test', ...spoofs(1)]))
  }
})

void t.test('attack identity – with 99 header lines, the sidecar\'s X-Forwarded-Client-Cert is still the first the app sees', async t => {
  for (const direction of stand.directions) {
    const path = `/public/many-${direction.name}`
    const fillers = Array.from({ length: 97 }, (_v, n) => `X-Filler-${n}: ${n}`)
    const head = [`GET ${path} HTTP/1.1`, 'Host: backend.test', ...fillers, `X-Forwarded-Client-Cert: URI=${TD}/spoof`]
    const seen = await atApp(t, direction, path, head)
    t.equal(seen?.rawHeaders[0]?.toLowerCase(), 'x-forwarded-client-cert', `${direction.name}: rawHeaders[0]`)
    t.match(seen?.rawHeaders[1], `URI=${TD}/client`, `${direction.name}: the sidecar's value`)
    t.notMatch(JSON.stringify(seen?.rawHeaders), 'spoof', `${direction.name}: no spoofed value`)
  }
})

void t.test('attack identity – 1500 header lines, which would push the sidecar\'s X-Forwarded-Client-Cert past what node:http keeps: 431', async t => {
  const head = ['GET /public/crowd HTTP/1.1', 'Host: backend.test', ...Array.from({ length: 1498 }, (_v, n) => `X-F${n}: ${n}`), `x_forwarded_client_cert: URI=${TD}/spoof`]
  for (const direction of stand.directions) await expectRefusal(t, direction, '1500 header lines', `${head.join('\r\n')}\r\n\r\n`, 431)
})

const FRAMING = ['content-length', 'transfer-encoding', 'host']
/**
 * A chunked POST whose trailer section holds `trailers`, without its final CRLF CRLF (atApp adds it). node:http
 * itself refuses Content-Length and Transfer-Encoding trailers, so those go to the byte recorders only.
 */
const trailered = (path: string, trailers: string[]): string =>
  [`POST ${path} HTTP/1.1`, 'Host: backend.test', 'Transfer-Encoding: chunked', '', chunked(['hello']).toString('latin1').slice(0, -4), ...trailers].join('\r\n')

void t.test('attack identity – identity fields and Host in chunked trailers never reach the app', async t => {
  for (const direction of stand.directions) {
    const path = `/public/trailers-${direction.name}`
    const seen = await atApp(t, direction, path, [trailered(path, [...spoofs(2), 'Host: evil.test'])])
    t.equal(seen?.length, 5, `${direction.name}: the body`)
    const names = fieldPairs(seen?.rawTrailers ?? []).map(([name]) => folded(name))
    t.same(names.filter(name => isIdentity(name) || FRAMING.includes(name)), [], `${direction.name}: none in req.trailers`)
    await checkIdentity(t, direction, seen)
  }
})

void t.test('attack identity – framing fields in trailers are refused (llhttp would apply them); a Host trailer is not sent on', async t => {
  for (const direction of stand.directions) {
    for (const field of ['Content-Length: 5', 'Transfer-Encoding: chunked']) {
      await expectRefusal(t, direction, `a ${field.split(':')[0]} trailer`, Buffer.from(`${trailered('/public/trailers-framing', [...spoofs(3), field])}\r\n\r\n`, 'latin1'), 400, true)
    }
    const seen = direction.recorder.seen.length
    const connection = await direction.open(t, 'raw')
    connection.write(`${trailered('/public/trailers-raw', [...spoofs(3), 'Host: evil.test'])}\r\n\r\n`)
    const response = await connection.response(false, 3000)
    t.equal(response.status, 200, `${direction.name}: forwarded (${response.line})`)
    const trailers = (direction.recorder.seen[seen]?.trailers ?? []).map(([name]) => name.toLowerCase())
    t.same(trailers.filter(name => FRAMING.includes(name)), [], `${direction.name}: no Host in the trailer section`)
    if (direction.name !== 'outbound') t.same(trailers.filter(isIdentity), [], `${direction.name}: no identity field either`)
  }
})

void t.test('attack target – a target with #, a byte RFC 9112 and RFC 3986 do not allow, a bad %-escape, /%2f or a backslash: 400', async t => {
  const bytes = ['#frag', ' b', '"', '<', '>', '\\', '^', '`', '{', '|', '}', '[', ']', '\x01', '\x7f', '\xe9', '\xff', '%zz', '%2', '%']
  const cases = [
    ...bytes.map(text => [`/public/a${text}`, `a target with ${JSON.stringify(text)}`]),
    ['/public/a?q=|', 'a query with |'], ['/public/%2f..%2fprivate', '/%2f'], ['/public/%5C..%5Cprivate', '/%5C'], ['/public\\..\\private', 'backslashes']
  ]
  for (const direction of stand.directions) {
    for (const [target, label] of cases) await expectRefusal(t, direction, label, Buffer.from(`GET ${target} HTTP/1.1\r\nHost: backend.test\r\n\r\n`, 'latin1'), 400)
  }
})

void t.test('attack target – an absolute-form target is decided on its path and sent on in origin-form, Host set to its authority', async t => {
  for (const direction of stand.directions) {
    const arrived = bytesSince(direction.recorder)
    const seen = direction.recorder.seen.length
    const connection = await direction.open(t, 'raw')
    connection.write('GET http://backend.test:8080/public/abs?q=1 HTTP/1.1\r\nHost: other.test\r\n\r\n')
    const response = await connection.response(false, 3000)
    t.equal(response.status, 200, `${direction.name}: allowed`)
    const request = direction.recorder.seen[seen]
    t.equal(request?.line, 'GET /public/abs?q=1 HTTP/1.1', `${direction.name}: origin-form`)
    t.same(valuesOf(request?.fields ?? [], 'host'), ['backend.test:8080'], `${direction.name}: one Host, the URI's authority`)

    const denied = arrived().length
    connection.write('GET http://backend.test/private/abs HTTP/1.1\r\nHost: backend.test\r\n\r\n')
    const refused = await connection.response(false, 3000)
    t.match({ status: refused.status, body: jsonBody(refused) }, { status: 403, body: { error: 'denied by policy', rule: String, reason: String } }, `${direction.name}: a denied path in absolute-form: 403`)
    t.notMatch(arrived().slice(denied), '/private', `${direction.name}: never sent on`)
    await servesNormally(t, direction)
  }
})
