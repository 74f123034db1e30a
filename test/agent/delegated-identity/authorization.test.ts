import t from 'tap'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { status } from '@grpc/grpc-js'
import { SETPRIV_MISSING } from '../../helpers/netns-tools'
import { nodeAsUser } from '../../helpers/node-as-user'
import { DELEGATE_ID, TD, startDelegatedStand, uid } from './fixtures/delegated-stand'
import type { DelegatedStand, X509BundlesMessage, X509SvidsMessage } from './fixtures/delegated-stand'

// Who may call the Delegated Identity API, with the kernel as the only witness: a caller attested (by its
// connection's SO_PEERCRED and /proc) to an entry whose SPIFFE ID is in authorizedDelegates. Everyone else gets
// SPIRE's PERMISSION_DENIED, on the dedicated socket and on the admin socket alike, and a warn line; a delegate that
// loses its entry has its open streams ended PERMISSION_DENIED.

const root = join(__dirname, '..', '..', '..')
const asRoot = (process.getuid?.() ?? 0) !== 0 ? 'needs root: the caller runs as another user (setpriv)' : SETPRIV_MISSING
const SUBJECT = [{ type: 'unix', value: 'uid:64301' }]
const NOT_CONFIGURED = 'caller not configured as an authorized delegate'

/** A client process as uid `id`: subscribes to the X.509 bundles on `socket` and prints the first outcome ({ code, details } or { data }). */
const CLIENT = `
const grpc = require('@grpc/grpc-js')
const [socket] = process.argv.slice(1)
const client = new grpc.Client('unix:' + socket, grpc.credentials.createInsecure())
const bytes = b => b
const call = client.makeServerStreamRequest('/spire.api.agent.delegatedidentity.v1.DelegatedIdentity/SubscribeToX509Bundles', bytes, bytes, Buffer.alloc(0), new grpc.Metadata(), { deadline: Date.now() + 20000 })
let done = false
const finish = result => { if (done) return; done = true; process.stdout.write(JSON.stringify(result)); call.cancel(); client.close() }
call.on('data', () => finish({ data: true }))
call.on('error', err => finish({ code: err.code, details: err.details }))
`

async function subscribeAs (stand: DelegatedStand, id: number): Promise<{ code?: number, details?: string, data?: boolean }> {
  const [command, prefix] = nodeAsUser(id)
  const child = spawn(command, [...prefix, '-e', CLIENT, stand.delegatedSocket], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
  await new Promise(resolve => child.on('close', resolve))
  return JSON.parse(out) as { code?: number, details?: string, data?: boolean }
}

void t.test('delegated identity – a caller that is not an authorized delegate is refused on every method, in SPIRE\'s words', async t => {
  const stand = await startDelegatedStand(t)
  const client = stand.client()
  const expectDenied = async (details: string): Promise<void> => {
    for (const method of ['SubscribeToX509SVIDs', 'SubscribeToX509Bundles', 'SubscribeToJWTBundles'] as const) {
      const stream = client.subscribe(method, method === 'SubscribeToX509SVIDs' ? { selectors: SUBJECT } : {})
      const ended = await stream.endedWithin(5000)
      t.match(ended, { code: status.PERMISSION_DENIED, details }, `${method}: PERMISSION_DENIED "${details}"`)
      t.equal(stream.messages.length, 0, `${method}: nothing was sent`)
    }
    t.match(await client.jwtFailure({ audience: ['spiffe://plant.example/api'], selectors: SUBJECT }), { code: status.PERMISSION_DENIED, details }, `FetchJWTSVIDs: "${details}"`)
  }

  // This process's entry names another SPIFFE ID: it has an identity, but not a delegate's.
  stand.agent.store.updateEntry(stand.delegateEntry.id, { spiffeId: `spiffe://${TD}/just-a-workload` })
  await expectDenied(NOT_CONFIGURED)
  t.match(stand.logs().filter(l => l.msg === 'delegated identity API: caller refused'), [{ level: 40, uid, pid: process.pid, reason: NOT_CONFIGURED, spiffeIds: [`spiffe://${TD}/just-a-workload`] }],
    'a warn line with the caller\'s uid, pid and SPIFFE IDs (once per uid per 10 s)')

  // No entry at all: no identity.
  stand.agent.store.deleteEntry(stand.delegateEntry.id)
  await expectDenied('no identity issued')

  // The admin socket serves the API too, with the same check (its owner is no delegate for being its owner).
  const viaAdmin = stand.client('admin').subscribe<X509BundlesMessage>('SubscribeToX509Bundles')
  t.match(await viaAdmin.endedWithin(5000), { code: status.PERMISSION_DENIED, details: 'no identity issued' }, 'the admin socket: refused too')
})

void t.test('delegated identity – an authorized delegate is served without the Workload API\'s security header, on both sockets', async t => {
  const stand = await startDelegatedStand(t)
  for (const socket of ['dedicated', 'admin'] as const) {
    const bundles = stand.client(socket).subscribe<X509BundlesMessage>('SubscribeToX509Bundles')
    const first = await bundles.next(0, 'the bundles')
    t.same(Object.keys(first.ca_certificates), [`spiffe://${TD}`], `${socket} socket: served (no workload.spiffe.io header was sent)`)
  }
  t.match(stand.logs().filter(l => l.msg === 'delegated identity API: subscription opened'), [
    { stream: 'x509-bundles', delegate: DELEGATE_ID, uid, pid: process.pid, trustDomains: 1 },
    { stream: 'x509-bundles', delegate: DELEGATE_ID, uid, pid: process.pid, trustDomains: 1 }
  ], 'each subscription is logged with the delegate\'s ID and the kernel\'s uid and pid')
})

void t.test('delegated identity – a delegate whose entry is deleted or renamed has its streams ended PERMISSION_DENIED', async t => {
  const stand = await startDelegatedStand(t)
  stand.agent.store.createEntry({ spiffeId: `spiffe://${TD}/app`, selectors: ['unix:uid:64301'] })
  const client = stand.client()
  const svids = client.subscribe<X509SvidsMessage>('SubscribeToX509SVIDs', { selectors: SUBJECT })
  const bundles = client.subscribe<X509BundlesMessage>('SubscribeToX509Bundles')
  await svids.next(0, 'the SVIDs', m => m.x509_svids.length === 1)
  await bundles.next(0, 'the bundles')
  t.equal(await svids.endedWithin(300), undefined, 'open while the delegate is one')

  stand.agent.store.updateEntry(stand.delegateEntry.id, { spiffeId: `spiffe://${TD}/renamed` })
  t.match(await svids.endedWithin(5000), { code: status.PERMISSION_DENIED, details: NOT_CONFIGURED }, 'renamed: the SVID stream ends at once')
  t.match(await bundles.endedWithin(5000), { code: status.PERMISSION_DENIED, details: NOT_CONFIGURED }, 'and the bundle stream, though no bundle changed')

  stand.agent.store.updateEntry(stand.delegateEntry.id, { spiffeId: DELEGATE_ID })
  const again = client.subscribe<X509SvidsMessage>('SubscribeToX509SVIDs', { selectors: SUBJECT })
  await again.next(0, 'the SVIDs', m => m.x509_svids.length === 1)
  stand.agent.store.deleteEntry(stand.delegateEntry.id)
  t.match(await again.endedWithin(5000), { code: status.PERMISSION_DENIED, details: 'no identity issued' }, 'deleted: ended "no identity issued"')
  // The two streams of the rename end together: their lines may come in either order.
  const closed = stand.logs().filter(l => l.msg === 'delegated identity API: subscription closed' && l.code === 'PERMISSION_DENIED')
  const expected = [
    { stream: 'x509-svids', delegate: DELEGATE_ID, selectors: ['unix:uid:64301'], reason: NOT_CONFIGURED, lastSent: 1 },
    { stream: 'x509-bundles', reason: NOT_CONFIGURED },
    { stream: 'x509-svids', reason: 'no identity issued' }
  ]
  t.equal(closed.length, expected.length, 'each end is logged once')
  for (const line of expected) t.ok(closed.some(l => Object.entries(line).every(([key, value]) => JSON.stringify(l[key]) === JSON.stringify(value))), `logged: ${JSON.stringify(line)}`)
})

void t.test('delegated identity – the caller is who the kernel says: another uid is refused until its own entry names a delegate', { skip: asRoot }, async t => {
  const stand = await startDelegatedStand(t)
  t.same(await subscribeAs(stand, 64310), { code: status.PERMISSION_DENIED, details: 'no identity issued' }, 'uid 64310 without an entry')
  const entry = stand.agent.store.createEntry({ spiffeId: `spiffe://${TD}/stranger`, selectors: ['unix:uid:64310'] })
  t.same(await subscribeAs(stand, 64310), { code: status.PERMISSION_DENIED, details: NOT_CONFIGURED }, 'with an entry that is no delegate\'s')
  stand.agent.store.updateEntry(entry.id, { spiffeId: DELEGATE_ID })
  t.same(await subscribeAs(stand, 64310), { data: true }, 'attested to the delegate\'s SPIFFE ID: served')
})
