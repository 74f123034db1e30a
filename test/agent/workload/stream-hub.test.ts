import t from 'tap'
import { EventEmitter } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import type { ServerWritableStream } from '@grpc/grpc-js'
import { AgentCa } from '../../../agent/ca'
import { RegistrationStore } from '../../../agent/store'
import { StreamHub } from '../../../agent/workload/stream-hub'
import { X509SvidCache } from '../../../agent/workload/svid-cache'
import { parseTrustDomain } from '../../../spiffe/id'
import { X509Bundle } from '../../../spiffe/x509-bundle'
import { verifyX509Svid } from '../../../spiffe/x509-svid'
import { splitConcatenatedDer } from '../../../spiffe/der'
import { createTestCa } from '../../../certs-test'

// The hub with a real CA (on a simulated clock, to reach rotation points in milliseconds) and a real store.
// The gRPC calls are stand-ins that record what is written, so rotation can be stepped precisely.
const dir = mkdtempSync(join(tmpdir(), 'chaperone-hub-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const logger = pino({ level: 'silent' })
const td = parseTrustDomain('plant.example')

class RecordingCall extends EventEmitter {
  readonly written: Array<Record<string, unknown>> = []
  write (message: Record<string, unknown>): boolean {
    this.written.push(message)
    return true
  }

  end (): void {}
}

/** Waits (up to 5 s) until `condition` holds: minting is asynchronous. */
async function until (condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000
  while (!condition() && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 5))
}

void t.test('stream hub – CA and JWT-key rotation reach every open stream as bundle updates, and SVIDs are re-minted', async t => {
  let now = Date.now()
  const clock = (): Date => new Date(now)
  const ca = await AgentCa.open({ trustDomain: td, dataDir: join(dir, 'data'), caTtlSeconds: 6 * 3600, x509SvidTtlSeconds: 3600, logger, clock })
  const store = RegistrationStore.open({ dataDir: join(dir, 'data'), trustDomain: td, logger, clock })
  const cache = new X509SvidCache(ca, logger, { clock })
  const hub = new StreamHub({ store, ca, cache, logger })
  t.teardown(() => { hub.close(); cache.close(); ca.close(); store.close() })
  const entry = store.createEntry({ spiffeId: 'spiffe://plant.example/api', selectors: ['unix:uid:7'] })
  const caller = { pid: 1, uid: 7, selectors: entry.selectors }
  const calls = { svid: new RecordingCall(), x509: new RecordingCall(), jwt: new RecordingCall() }
  hub.open('x509-svid', caller, [entry], calls.svid as unknown as ServerWritableStream<unknown, unknown>)
  hub.open('x509-bundles', caller, [entry], calls.x509 as unknown as ServerWritableStream<unknown, unknown>)
  hub.open('jwt-bundles', caller, [entry], calls.jwt as unknown as ServerWritableStream<unknown, unknown>)
  await until(() => calls.svid.written.length === 1)
  t.same([calls.svid.written.length, calls.x509.written.length, calls.jwt.written.length], [1, 1, 1], 'the first message at once')
  const authorities = (call: RecordingCall): number => splitConcatenatedDer(Object.values(call.written.at(-1)?.bundles as Record<string, Buffer>)[0]).length
  const jwtKeys = (call: RecordingCall): number => (JSON.parse(Object.values(call.written.at(-1)?.bundles as Record<string, Buffer>)[0].toString()) as { keys: unknown[] }).keys.length
  t.equal(authorities(calls.x509), 1)
  t.equal(jwtKeys(calls.jwt), 1)
  const firstLeaf = (calls.svid.written[0].svids as Array<{ x509_svid: Buffer }>)[0].x509_svid

  now += 3 * 3600_000 + 1000 // half of the CA's life: the next CA and JWT key are prepared and published
  t.ok(await ca.rotate())
  await until(() => calls.svid.written.length === 2 && calls.x509.written.length === 2 && calls.jwt.written.length === 2)
  t.equal(authorities(calls.x509), 2, 'the prepared authority reaches the X.509 bundle stream')
  t.equal(jwtKeys(calls.jwt), 2, 'the prepared JWT key reaches the JWT bundle stream')
  t.equal(calls.svid.written.length, 2, 'the SVID stream gets the new bundle too')

  now += 2 * 3600_000 // past 5/6: the next authority becomes active, every SVID is re-minted under it
  t.ok(await ca.rotate())
  const leafOf = (message: Record<string, unknown> | undefined): Buffer | undefined => (message?.svids as Array<{ x509_svid: Buffer }> | undefined)?.[0].x509_svid
  const bundleNow = (): X509Bundle => X509Bundle.fromDer(td, (calls.svid.written.at(-1)?.svids as Array<{ bundle: Buffer }>)[0].bundle)
  const verifiesNow = (): boolean => {
    try {
      verifyX509Svid(splitConcatenatedDer(leafOf(calls.svid.written.at(-1)) ?? Buffer.alloc(0)), bundleNow(), { now: clock() })
      return true
    } catch {
      return false
    }
  }
  await until(verifiesNow)
  const last = calls.svid.written.at(-1) as { svids: Array<{ x509_svid: Buffer, bundle: Buffer }> }
  const leaf = last.svids[0].x509_svid
  t.notOk(leaf.equals(firstLeaf), 'a new SVID, signed by the newly active authority')
  const bundle = X509Bundle.fromDer(td, last.svids[0].bundle)
  t.equal(String(verifyX509Svid(splitConcatenatedDer(leaf), bundle, { now: clock() })), 'spiffe://plant.example/api')
  t.equal(bundle.size, 2, 'the old authority stays in the bundle until it expires, so SVIDs it signed still verify')
  t.equal(String(verifyX509Svid(splitConcatenatedDer(firstLeaf), bundle, { now: new Date(now - 5 * 3600_000 + 60_000) })), 'spiffe://plant.example/api',
    'an SVID of the old authority verifies against the new bundle within its own lifetime')
})

void t.test('stream hub – bundle streams follow the trust domains the caller\'s entries federate with, not every entry change', async t => {
  const dataDir = join(dir, 'data-federation')
  const ca = await AgentCa.open({ trustDomain: td, dataDir, logger })
  const store = RegistrationStore.open({ dataDir, trustDomain: td, logger })
  const cache = new X509SvidCache(ca, logger)
  const hub = new StreamHub({ store, ca, cache, logger })
  t.teardown(() => { hub.close(); cache.close(); ca.close(); store.close() })
  const entry = store.createEntry({ spiffeId: 'spiffe://plant.example/api', selectors: ['unix:uid:7'] })
  const caller = { pid: 1, uid: 7, selectors: entry.selectors }
  const calls = { svid: new RecordingCall(), x509: new RecordingCall() }
  hub.open('x509-svid', caller, [entry], calls.svid as unknown as ServerWritableStream<unknown, unknown>)
  hub.open('x509-bundles', caller, [entry], calls.x509 as unknown as ServerWritableStream<unknown, unknown>)
  await until(() => calls.svid.written.length === 1)
  const trustDomains = (message: Record<string, unknown> | undefined): string[] => Object.keys(message?.bundles as Record<string, Buffer>).sort()

  store.updateEntry(entry.id, { hint: 'api' })
  await until(() => calls.svid.written.length === 2)
  t.equal(calls.svid.written.length, 2, 'the SVID stream gets the changed entry')
  store.setFederatedBundle({ trustDomain: 'other.example', format: 'pem', bundle: createTestCa('other.example').certPem })
  store.updateEntry(entry.id, { federatesWith: ['other.example'] })
  await until(() => calls.x509.written.length === 2)
  t.equal(calls.x509.written.length, 2, 'the bundle stream only once: for the entry that federates, not for the hint nor a bundle it did not yet name')
  t.same(trustDomains(calls.x509.written[1]), ['other.example', 'plant.example'].map(name => `spiffe://${name}`))
  store.deleteFederatedBundle('other.example')
  await until(() => calls.x509.written.length === 3)
  t.same(trustDomains(calls.x509.written[2]), ['spiffe://plant.example'], 'a deleted federated bundle is withdrawn')
})
