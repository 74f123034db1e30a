/**
 * Our Delegated Identity API client (DelegatedIdentityClient, DelegatedX509Source) against a REAL spire-agent at
 * SPIRE_VERSION (spire-stand.ts) whose admin socket authorizes this test process as its delegate
 * (`authorized_delegates`; this process runs as root and is registered as `…/delegate` by unix:uid:0). The "app" is a
 * `sleep` run as another uid with its own entry (short X509-SVID TTL, federating with one foreign trust domain; a
 * second foreign trust domain reaches the agent through another entry). Proves: PID mode and selector mode give the
 * app's SVID with a key matching its leaf; the one shared bundle stream carries SPIRE's own bundle and both foreign
 * ones, while the app's context holds only its own and the one it federates with; JWT-SVIDs validate against the JWT
 * bundles, and SPIRE's "audience must be specified" is mapped; callers that are not delegates (an entry not in
 * authorized_delegates, and no entry at all: our client in child processes of other uids) get the PermissionDenied
 * mappings; SPIRE's rotation of the app's SVID reaches the DelegatedX509Source as an update; and deleting the app's
 * entry makes SPIRE send an update without SVIDs, which withdraws the identity. Part of `npm run test:interop`.
 *
 * The children run the built client (dist/): `npm test` (which .ci/run runs first) builds it; when it is missing or
 * older than spiffe/'s sources the test builds it. About 40 s once SPIRE is built.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { sign, verify, X509Certificate } from 'node:crypto'
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createTestCa, toPem } from '../../certs-test'
import { DelegatedIdentityClient } from '../../spiffe/delegated-identity-client'
import type { DelegatedX509SvidUpdate } from '../../spiffe/delegated-identity-client'
import { DelegatedX509Source } from '../../spiffe/delegated-x509-source'
import { validateJwtSvid } from '../../spiffe/jwt-svid'
import type { JwtBundle } from '../../spiffe/jwt-bundle'
import type { X509Context } from '../../spiffe/x509-context'
import { verifyX509Svid } from '../../spiffe/x509-svid'
import { must, run, waitFor } from '../helpers/command'
import { SETPRIV } from '../helpers/netns-tools'
import { nodeAsUser } from '../helpers/node-as-user'
import { interopSkip, SPIRE_VERSION } from './peers'
import { stopChild } from './spire-process'
import { startSpireStand } from './spire-stand'

const skip = interopSkip()
const root = join(__dirname, '..', '..')
const TD = 'spire.example'
const ID = { delegate: `spiffe://${TD}/delegate`, app: `spiffe://${TD}/app`, otherApp: `spiffe://${TD}/other-app`, notDelegate: `spiffe://${TD}/not-delegate` }
const UID = { app: 64210, notDelegate: 64211, otherApp: 64212, noEntry: 64213 }
const FEDERATED = 'fed.example'
const UNFEDERATED = 'other.example'
/** The app's X509-SVID TTL: SPIRE renews it once less than half its lifetime (from NotBefore, backdated 10 s) is left. */
const APP_TTL = 20

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`

/** The built client, rebuilt when spiffe/ changed since (other uids cannot load TypeScript through tap's loader). */
async function builtClient (): Promise<string> {
  const built = join(root, 'dist', 'spiffe', 'delegated-identity-client.js')
  const newest = Math.max(...readdirSync(join(root, 'spiffe')).map(file => statSync(join(root, 'spiffe', file)).mtimeMs))
  if (!existsSync(built) || statSync(built).mtimeMs < newest) await must('npm', ['run', 'build', '--silent'], { cwd: root, timeoutMs: 600_000 })
  return built
}

/** A child process: subscribes to `pid`'s X509-SVIDs with our client and prints the first answer or error. */
const CALLER = `
const { DelegatedIdentityClient } = require(process.argv[1])
const client = new DelegatedIdentityClient(process.argv[2])
const cancel = client.subscribeToX509Svids({ pid: Number(process.argv[3]) },
  update => done({ svids: update.svids.map(s => s.spiffeId) }), err => done({ code: err.code, message: err.message }))
function done (result) { process.stdout.write(JSON.stringify(result)); cancel(); client.close() }
`

void t.test(`Delegated Identity API client on SPIRE ${SPIRE_VERSION}'s agent: PID and selector modes, bundles, JWT, refusals, rotation`, { skip, timeout: 600_000 }, async t => {
  const startedAt = Date.now()
  const [built, spire] = await Promise.all([builtClient(), startSpireStand(t, { x509SvidTtl: 60, authorizedDelegates: [ID.delegate] })])
  const adminSocket = spire.adminSocket ?? ''
  t.comment(`SPIRE up in ${seconds(Date.now() - startedAt)} (including any build)`)
  for (const td of [FEDERATED, UNFEDERATED]) {
    const file = join(spire.dir, `${td}.pem`)
    writeFileSync(file, toPem([createTestCa(td).certDer]))
    await spire.server('bundle', 'set', '-format', 'pem', '-id', `spiffe://${td}`, '-path', file)
  }
  await spire.createEntry({ spiffeId: ID.delegate, selectors: ['unix:uid:0'] })
  const appEntry = await spire.createEntry({ spiffeId: ID.app, selectors: [`unix:uid:${UID.app}`], x509SvidTtl: APP_TTL, federatesWith: [`spiffe://${FEDERATED}`] })
  await spire.createEntry({ spiffeId: ID.otherApp, selectors: [`unix:uid:${UID.otherApp}`], federatesWith: [`spiffe://${UNFEDERATED}`] })
  await spire.createEntry({ spiffeId: ID.notDelegate, selectors: [`unix:uid:${UID.notDelegate}`] })
  await spire.waitForSvids([ID.delegate])

  // The app: a process of its own uid, known to the agent only by what it attests of it.
  const app = spawn(SETPRIV as string, [`--reuid=${UID.app}`, `--regid=${UID.app}`, '--clear-groups', 'sleep', '600'], { stdio: 'ignore' })
  t.teardown(async () => { await stopChild(app) })
  const pid = app.pid ?? 0
  const client = new DelegatedIdentityClient(`unix://${adminSocket}`)
  t.teardown(() => client.close())
  let bundleStreams = 0
  const subscribeToX509Bundles = client.subscribeToX509Bundles.bind(client)
  client.subscribeToX509Bundles = (...args) => {
    bundleStreams++
    return subscribeToX509Bundles(...args)
  }
  const byPid = new DelegatedX509Source({ client, workload: { pid } })
  t.teardown(() => byPid.close())
  const context = await byPid.ready(30_000)
  const updates: X509Context[] = []
  byPid.on('update', update => { updates.push(update) })
  t.comment(`the app's SVID by PID ${seconds(Date.now() - startedAt)} after start`)

  await t.test('PID mode: the app\'s SVID, with a key matching its leaf, verified by its trust domain\'s bundle', async t => {
    t.equal(context.spiffeId.toString(), ID.app)
    const signature = sign('sha256', Buffer.from('proof'), context.svid.key)
    t.ok(verify('sha256', Buffer.from('proof'), new X509Certificate(context.svid.chain[0]).publicKey, signature), 'the key is the leaf\'s')
    t.equal(verifyX509Svid(context.svid.chain, context.bundles).toString(), ID.app)
    t.same([...context.bundles].map(b => b.trustDomain.name).sort(), [FEDERATED, TD], `its own trust domain and the one its entry federates with, not ${UNFEDERATED}`)
    const raw = await new Promise<DelegatedX509SvidUpdate | Error>(resolve => {
      const cancel = client.subscribeToX509Svids({ pid }, update => { if (update.svids.length > 0) { cancel(); resolve(update) } }, resolve)
    })
    t.match(raw, { svids: [{ spiffeId: ID.app }], federatesWith: [FEDERATED] }, 'SPIRE\'s federates_with, as trust domain names')
  })

  await t.test('selector mode: the same identity, and the one bundle stream serves both sources', async t => {
    const bySelectors = new DelegatedX509Source({ client, workload: { selectors: [{ type: 'unix', value: `uid:${UID.app}` }] } })
    t.teardown(() => bySelectors.close())
    const selected = await bySelectors.ready(30_000)
    t.equal(selected.spiffeId.toString(), ID.app)
    const signature = sign('sha256', Buffer.from('proof'), selected.svid.key)
    t.ok(verify('sha256', Buffer.from('proof'), new X509Certificate(selected.svid.chain[0]).publicKey, signature), 'the key is the leaf\'s')
    t.equal(bundleStreams, 1, 'one SubscribeToX509Bundles stream for two sources')
    t.equal(client.x509Bundles.subscriberCount, 2)
  })

  await t.test('the shared bundle stream carries SPIRE\'s bundle and every federated one', async t => {
    const bundles = client.x509Bundles.current
    t.same([...bundles?.keys() ?? []].sort(), [FEDERATED, UNFEDERATED, TD])
    const spireRoots = (await spire.bundlePem()).match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []
    t.ok(spireRoots.length > 0 && spireRoots.every(pem => bundles?.get(TD)?.hasAuthority(new X509Certificate(pem))), 'the authorities `spire-server bundle show` prints')
  })

  await t.test('JWT-SVIDs validate against the JWT bundles; no audience is SPIRE\'s InvalidArgument, mapped', async t => {
    const svids = await client.fetchJwtSvids({ pid }, [`spiffe://${TD}/db`])
    t.match(svids, [{ spiffeId: ID.app, token: /^ey/ }])
    const jwtBundles = await new Promise<Map<string, JwtBundle> | Error>(resolve => {
      const cancel = client.subscribeToJwtBundles(bundles => { cancel(); resolve(bundles) }, resolve)
    })
    if (jwtBundles instanceof Error) throw jwtBundles
    t.equal((await validateJwtSvid(svids[0].token, { getJwtBundle: td => jwtBundles.get(td.name) }, `spiffe://${TD}/db`)).id.toString(), ID.app)
    await t.rejects(client.fetchJwtSvids({ pid }, []), {
      code: 'ERR_DELEGATED_IDENTITY_API_INVALID_REQUEST',
      message: `the agent at unix://${adminSocket} rejected FetchJWTSVIDs: audience must be specified: pass at least one audience`
    })
  })

  await t.test('callers that are not delegates get PermissionDenied, mapped to what to do', async t => {
    // The admin socket is 0770 and root's: the callers are in root's group, so SPIRE, not the kernel, decides.
    const callAs = async (uid: number): Promise<{ code?: string, message?: string }> => {
      const [command, prefix] = nodeAsUser(uid, [0])
      const result = await run(command, [...prefix, '-e', CALLER, built, `unix://${adminSocket}`, String(pid)], { cwd: root, timeoutMs: 30_000 })
      return JSON.parse(result.stdout) as { code?: string, message?: string }
    }
    t.same(await callAs(UID.notDelegate), {
      code: 'ERR_DELEGATED_IDENTITY_API_DENIED',
      message: `this process is not an authorized delegate of the agent at unix://${adminSocket}: add its SPIFFE ID to the agent's authorized_delegates (SPIRE) / ` +
        'authorizedDelegates (Chaperone) (the agent said: caller not configured as an authorized delegate)'
    }, `${ID.notDelegate} is registered but not a delegate`)
    t.same(await callAs(UID.noEntry), {
      code: 'ERR_DELEGATED_IDENTITY_API_DENIED',
      message: `this process is not an authorized delegate of the agent at unix://${adminSocket}: no registration entry matches this process (uid ${UID.noEntry}, ` +
        `gid ${UID.noEntry}), so it has no SPIFFE ID to authorize: register it, then add its SPIFFE ID to the agent's authorized_delegates (SPIRE) / authorizedDelegates (Chaperone)`
    }, 'a process without any entry')
  })

  await t.test('SPIRE\'s rotation of the app\'s SVID reaches the DelegatedX509Source as an update', async t => {
    const serialOf = (c: X509Context): string => new X509Certificate(c.svid.chain[0]).serialNumber
    const rotated = await waitFor('the app\'s rotated SVID', 40_000, async () => updates.find(update => serialOf(update) !== serialOf(context)))
    t.equal(rotated.spiffeId.toString(), ID.app)
    t.not(byPid.current === undefined ? '' : serialOf(byPid.current), serialOf(context), 'the current one is the rotated')
    t.ok(verify('sha256', Buffer.from('proof'), new X509Certificate(rotated.svid.chain[0]).publicKey, sign('sha256', Buffer.from('proof'), rotated.svid.key)), 'with its new key')
    t.comment(`rotated ${seconds(Date.now() - startedAt)} after start`)
  })

  await t.test('deleting the app\'s entry withdraws its identity: SPIRE sends an update without SVIDs', async t => {
    // The agent learns of the deletion at its next sync with the server (every 5 s).
    const withdrawn = new Promise<Error | undefined>(resolve => {
      const timer = setTimeout(() => { resolve(undefined) }, 30_000)
      byPid.once('withdrawn', err => { clearTimeout(timer); resolve(err) })
    })
    await spire.server('entry', 'delete', '-entryID', appEntry)
    t.match(await withdrawn, { code: 'ERR_X509_SOURCE_WITHDRAWN', message: new RegExp(`no longer issues an X509-SVID to pid ${pid} \\(it had ${ID.app}\\)`) })
    t.equal(byPid.current, undefined, 'nothing is presented for the app any more')
    t.comment(`withdrawn ${seconds(Date.now() - startedAt)} after start`)
  })
})
