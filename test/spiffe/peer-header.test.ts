import t from 'tap'
import type { Test } from 'tap'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, request } from 'node:http'
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseSpiffeId } from '../../spiffe/id'
import type { SpiffeId } from '../../spiffe/id'
import { JwtSource } from '../../spiffe/jwt-source'
import { formatXfcc, parseXfcc, peerIdFromRequest } from '../../spiffe/peer-header'
import { jwtSvidFromRequest } from '../../spiffe/bearer-header'
import { startStandIn, WORKLOAD_ID } from '../helpers/workload-stand-in'

const SIDECAR = 'spiffe://td-a.test/sidecar/app-b'
const PEER = 'spiffe://td-a.test/app-a'
const HASH = createHash('sha256').update('leaf').digest('hex')

/**
 * A real HTTP server whose handler's result (or error code) comes back as JSON, and a client to send it headers.
 */
async function serve (t: Test, handle: (req: IncomingMessage) => SpiffeId | undefined | Promise<SpiffeId>): Promise<(headers: OutgoingHttpHeaders) => Promise<unknown>> {
  const server = createServer((req, res) => {
    Promise.resolve().then(() => handle(req)).then(
      result => res.end(JSON.stringify({ result: result?.toString() ?? null })),
      (err: { code?: string, message: string }) => res.end(JSON.stringify({ code: err.code, message: err.message })))
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const { port } = server.address() as AddressInfo
  return async headers => await new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, headers }, res => {
      let body = ''
      res.setEncoding('utf8').on('data', chunk => { body += chunk }).on('end', () => resolve(JSON.parse(body)))
    }).on('error', reject).end()
  })
}

void t.test('xfcc – format and parse round-trip, quoting what Envoy\'s syntax needs', async t => {
  const header = formatXfcc({ by: SIDECAR, hash: HASH, uri: PEER })
  t.equal(header, `By=${SIDECAR};Hash=${HASH};URI=${PEER}`)
  t.same(parseXfcc(header), [{ by: SIDECAR, hash: HASH, uri: PEER }])

  const awkward = { by: 'http://x/a,b;c=d"e\\f', hash: '', uri: 'urn:plain' }
  const quoted = formatXfcc(awkward)
  t.equal(quoted, 'By="http://x/a,b;c=d\\"e\\\\f";Hash=;URI=urn:plain')
  t.same(parseXfcc(quoted), [awkward])
})

void t.test('xfcc – reads Envoy\'s own examples: several elements, any key case, repeated DNS', async t => {
  const envoy = 'By=http://frontend.lyft.com;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;' +
    'Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";URI=http://testclient.lyft.com'
  t.same(parseXfcc(envoy), [{
    by: 'http://frontend.lyft.com',
    hash: '468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688',
    subject: '/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client',
    uri: 'http://testclient.lyft.com'
  }])
  t.same(parseXfcc('by=a;uri=b,BY=c;dns=x.test;DNS=y.test;Uri=d'), [{ by: 'a', uri: 'b' }, { by: 'c', dns: ['x.test', 'y.test'], uri: 'd' }])
})

void t.test('xfcc – malformed headers are ERR_XFCC_INVALID naming the problem', async t => {
  const bad: Array<[string, RegExp]> = [
    ['', /empty/],
    ['By', /expected key=value at offset 0/],
    ['By=a;', /expected key=value at offset 5/],
    ['By=a,', /expected key=value/],
    [',By=a', /expected key=value/],
    ['By=a;;URI=b', /expected key=value/],
    ['By=a; URI=b', /expected key=value at offset 5/],
    ['By="a', /unterminated quoted value/],
    ['By="a"x;URI=b', /text after a quoted value/],
    ['By=a"b', /a quote inside an unquoted value/],
    ['Foo=bar', /unknown key "Foo"/],
    ['By=a;by=b', /by appears twice/]
  ]
  for (const [header, reason] of bad) {
    t.throws(() => parseXfcc(header), { code: 'ERR_XFCC_INVALID', message: reason }, JSON.stringify(header))
  }
})

void t.test('peer header – the peer ID comes from the last XFCC element of a real request', async t => {
  const send = await serve(t, req => peerIdFromRequest(req, { expectBy: parseSpiffeId(SIDECAR) }))
  const element = formatXfcc({ by: SIDECAR, hash: HASH, uri: PEER })
  t.same(await send({ 'X-Forwarded-Client-Cert': element }), { result: PEER })
  t.same(await send({ 'x-forwarded-client-cert': `By=spiffe://other/proxy;URI=spiffe://td-a.test/earlier,${element}` }), { result: PEER }, 'the last element counts')
  t.same(await send({}), { result: null }, 'no header, no peer')
  t.match(await send({ 'x-forwarded-client-cert': formatXfcc({ by: 'spiffe://td-a.test/impostor', hash: HASH, uri: PEER }) }),
    { code: 'ERR_XFCC_INVALID', message: /is by "spiffe:\/\/td-a\.test\/impostor", not by the expected sidecar spiffe:\/\/td-a\.test\/sidecar\/app-b/ })
  t.match(await send({ 'x-forwarded-client-cert': `URI=${PEER}` }), { code: 'ERR_XFCC_INVALID', message: /names no By/ })
  t.match(await send({ 'x-forwarded-client-cert': [element, element] }), { code: 'ERR_XFCC_INVALID', message: /sent 2 times/ })
  t.match(await send({ 'x-forwarded-client-cert': 'By=x;' }), { code: 'ERR_XFCC_INVALID' })
})

void t.test('peer header – without expectBy, any By; the URI must be a SPIFFE ID', async t => {
  const send = await serve(t, req => peerIdFromRequest(req))
  t.same(await send({ 'x-forwarded-client-cert': `By=anything;URI=${PEER}` }), { result: PEER })
  t.match(await send({ 'x-forwarded-client-cert': `By=${SIDECAR};Hash=${HASH}` }), { code: 'ERR_XFCC_INVALID', message: /no URI/ })
  t.match(await send({ 'x-forwarded-client-cert': `By=${SIDECAR};URI=http://a.test/x` }), { code: 'ERR_XFCC_INVALID', message: /not a SPIFFE ID/ })

  t.equal(peerIdFromRequest({ headers: { 'X-Forwarded-Client-Cert': `URI=${PEER}` } })?.toString(), PEER, 'plain headers: any case')
  t.throws(() => peerIdFromRequest({ headers: { 'x-forwarded-client-cert': [`URI=${PEER}`, `URI=${PEER}`] } }), { code: 'ERR_XFCC_INVALID', message: /sent 2 times/ })
})

void t.test('peer header – a JWT-SVID from Authorization: Bearer, validated for the audience', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-peer-header-'))
  const standIn = await startStandIn(dir)
  const source = new JwtSource({ address: standIn.address })
  t.teardown(async () => {
    source.close()
    await standIn.close(true)
    rmSync(dir, { recursive: true, force: true })
  })
  const token = await source.fetchJwtSvid('spiffe://td-a.test/api')
  const viaSource = await serve(t, async req => (await jwtSvidFromRequest(req, source, 'spiffe://td-a.test/api')).id)
  const viaBundle = await serve(t, async req => (await jwtSvidFromRequest(req, standIn.jwtBundle, 'spiffe://td-a.test/api')).id)

  t.same(await viaSource({ Authorization: `Bearer ${token}` }), { result: WORKLOAD_ID })
  t.same(await viaBundle({ authorization: `bearer  ${token}` }), { result: WORKLOAD_ID }, 'the scheme in any case')
  t.match(await viaSource({}), { code: 'ERR_BEARER_TOKEN_MISSING', message: /no Authorization header/ })
  t.match(await viaSource({ Authorization: `Basic ${token}` }), { code: 'ERR_BEARER_TOKEN_MISSING', message: /not "Bearer <token>"/ })
  t.notMatch(await viaSource({ Authorization: token }), { message: new RegExp(token.slice(0, 20)) }, 'the header is never echoed')
  t.match(await viaSource({ Authorization: [`Bearer ${token}`, 'Bearer other'] }), { code: 'ERR_BEARER_TOKEN_MISSING', message: /sent 2 times/ })
  t.match(await viaSource({ Authorization: 'Bearer not-a-jwt' }), { code: 'ERR_JWT_SVID_MALFORMED' })
  const forOther = await serve(t, async req => (await jwtSvidFromRequest(req, source, 'spiffe://td-a.test/other')).id)
  t.match(await forOther({ Authorization: `Bearer ${token}` }), { code: 'ERR_JWT_SVID_AUD_MISMATCH' })
})
