import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { readlinkSync, realpathSync } from 'node:fs'
import { status } from '@grpc/grpc-js'
import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose'
import { TD, startDelegatedStand, uid, until } from './fixtures/delegated-stand'
import type { JwtBundlesMessage } from './fixtures/delegated-stand'

// FetchJWTSVIDs: the audience first (SPIRE's order: even before the caller is checked), then the delegate, then the
// workload; a JWT-SVID for each of its entries but admin and downstream ones (SPIRE #6972).

const SUBJECT = [{ type: 'unix', value: 'uid:64601' }]
const AUDIENCE = ['spiffe://plant.example/api', 'audit']

void t.test('delegated jwt – the audience is required, even before the caller is checked', async t => {
  const stand = await startDelegatedStand(t)
  const client = stand.client()
  const missing = { code: status.INVALID_ARGUMENT, details: 'audience must be specified' }
  t.same(await client.jwtFailure({ audience: [], selectors: SUBJECT }), missing, 'none')
  t.same(await client.jwtFailure({ audience: [''], selectors: SUBJECT }), missing, 'an empty one')
  stand.agent.store.deleteEntry(stand.delegateEntry.id)
  t.same(await client.jwtFailure({ audience: [], selectors: SUBJECT }), missing, 'a caller that is no delegate gets the same answer first, as from SPIRE')
  t.match(stand.logs().filter(l => l.msg === 'delegated identity API: request refused'), [{ method: 'FetchJWTSVIDs', code: 'INVALID_ARGUMENT', uid, pid: process.pid }], 'logged with the caller')
})

void t.test('delegated jwt – a token for each entry but admin and downstream ones; jose verifies it with the JWT bundle as sent', async t => {
  const stand = await startDelegatedStand(t)
  const store = stand.agent.store
  store.createEntry({ spiffeId: `spiffe://${TD}/app`, selectors: ['unix:uid:64601'], hint: 'primary', jwtSvidTtl: 120 })
  store.createEntry({ spiffeId: `spiffe://${TD}/admin-tool`, selectors: ['unix:uid:64601'], admin: true })
  store.createEntry({ spiffeId: `spiffe://${TD}/nested-server`, selectors: ['unix:uid:64601'], downstream: true })
  const client = stand.client()
  const svids = await client.fetchJwtSvids({ audience: AUDIENCE, selectors: SUBJECT })
  t.same(svids.map(svid => svid.id), [{ trust_domain: TD, path: '/app' }], 'one token: admin and downstream entries get none')
  const [svid] = svids
  t.equal(svid.hint, 'primary')
  const claims = decodeJwt(svid.token)
  t.equal(svid.expires_at, claims.exp, 'expires_at: the token\'s exp')
  t.equal(svid.issued_at, claims.iat, 'issued_at: the token\'s iat')
  t.equal(svid.expires_at - svid.issued_at, 120, 'the entry\'s JWT TTL')
  const bundles = await client.subscribe<JwtBundlesMessage>('SubscribeToJWTBundles').next(0, 'the JWT bundles')
  const jwks = JSON.parse(bundles.bundles[`spiffe://${TD}`].toString()) as Parameters<typeof createLocalJWKSet>[0]
  const { payload } = await jwtVerify(svid.token, createLocalJWKSet(jwks), { audience: 'audit' })
  t.equal(payload.sub, `spiffe://${TD}/app`)
  t.same(payload.aud, AUDIENCE)

  // Only admin and downstream entries match: no identity.
  store.createEntry({ spiffeId: `spiffe://${TD}/admin-only`, selectors: ['unix:uid:64602'], admin: true })
  t.same(await client.jwtFailure({ audience: AUDIENCE, selectors: [{ type: 'unix', value: 'uid:64602' }] }), { code: status.PERMISSION_DENIED, details: 'no identity issued' })
  t.same(await client.jwtFailure({ audience: AUDIENCE, selectors: [{ type: 'unix', value: 'uid:64699' }] }), { code: status.PERMISSION_DENIED, details: 'no identity issued' }, 'no entry at all')
  t.same(await client.jwtFailure({ audience: AUDIENCE, selectors: SUBJECT, pid: process.pid }), { code: status.INVALID_ARGUMENT, details: 'must provide either selectors or non-zero PID, but not both' })
  t.same(await client.jwtFailure({ audience: AUDIENCE, selectors: [{ type: 'unix', value: '' }] }), { code: status.INVALID_ARGUMENT, details: 'could not parse provided selectors' })
})

void t.test('delegated jwt – by PID: the agent attests the process; a PID without one is NOT_FOUND', async t => {
  const stand = await startDelegatedStand(t)
  const sleep = realpathSync(spawnSync('sh', ['-c', 'command -v sleep'], { encoding: 'utf8' }).stdout.trim())
  stand.agent.store.createEntry({ spiffeId: `spiffe://${TD}/sleeper`, selectors: [`unix:uid:${uid}`, `unix:path:${sleep}`] })
  const child = spawn(sleep, ['60'], { stdio: 'ignore' })
  t.teardown(() => { child.kill('SIGKILL') })
  const pid = child.pid ?? 0
  await until(() => { try { return readlinkSync(`/proc/${pid}/exe`) === sleep } catch { return false } }, 'sleep to exec')
  const client = stand.client()
  t.same((await client.fetchJwtSvids({ audience: AUDIENCE, pid })).map(svid => svid.id.path), ['/sleeper'])
  child.kill('SIGKILL')
  await until(() => child.exitCode !== null || child.signalCode !== null, 'sleep to exit')
  t.same(await client.jwtFailure({ audience: AUDIENCE, pid }), { code: status.NOT_FOUND, details: `process ${pid} does not exist` })
})
