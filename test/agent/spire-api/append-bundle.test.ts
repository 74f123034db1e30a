import t from 'tap'
import { createPublicKey, generateKeyPairSync } from 'node:crypto'
import { Metadata, credentials } from '@grpc/grpc-js'
import type { Client, ServiceError } from '@grpc/grpc-js'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { createTestCa } from '../../../certs-test'
import { Agent } from '../../../agent/agent'
import { AdminClient } from '../../../agent/admin/client'
import { loadAgentConfig } from '../../../agent/config'
import { BundleService } from '../../../agent/spire-api/grpc-proto'
import type { BundleMessage } from '../../../agent/spire-api/messages'
import { WorkloadClient } from '../../../spiffe/workload-client'
import { foreignTrustDomain } from '../store/fixtures/foreign-trust-domain'
import { CODE, TD, entry, startSpireApiStand } from './fixtures/spire-api-stand'
import type { SpireApiStand } from './fixtures/spire-api-stand'

// SPIRE's AppendBundle on the SPIRE server socket: authorities appended to our own trust domain's bundle, beside the
// CA's, as SPIRE merges them, served everywhere our bundle goes (GetBundle, the admin API, every workload through the
// Workload API, pushed to watches), until they expire or are removed (admin API), and kept across restarts.

const uid = process.getuid?.() ?? 0
/** A second root and JWT key of our own trust domain, as during a CA migration; its JWT-SVIDs signed with that key. */
const second = foreignTrustDomain(TD)
const secondJwtKey = createPublicKey({ key: second.jwtPublicKey, format: 'jwk' }).export({ type: 'spki', format: 'der' })
const inAnHour = (): number => Math.floor(Date.now() / 1000) + 3600
const base64 = (der: Uint8Array): string => Buffer.from(der).toString('base64')

const append = async (stand: SpireApiStand, request: object): Promise<BundleMessage> => await stand.call<BundleMessage>('AppendBundle', request, 'bundle')

async function until (condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (await condition()) return
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  throw new Error(`timed out waiting for ${what}`)
}

/** A workload (this process) with an entry, watching its X509-SVIDs: the X.509 bundle of each message, as base64 DER. */
async function watchingWorkload (t: tap.Test, stand: SpireApiStand): Promise<{ client: WorkloadClient, bundles: string[][] }> {
  await stand.call('BatchCreateEntry', { entries: [entry(stand, '/me', { selectors: [{ type: 'unix', value: `uid:${uid}` }] })] })
  const client = new WorkloadClient(`unix://${stand.dir}/workload.sock`)
  t.teardown(() => client.close())
  const bundles: string[][] = []
  t.teardown(client.watchX509Svids(update => bundles.push(update.svids[0].bundle.authorities.map(cert => base64(cert.raw))), () => {}))
  await until(() => bundles.length > 0, 'the first X509-SVID message')
  return { client, bundles }
}

void t.test('append bundle – nothing to append, or an authority that does not convert: INVALID_ARGUMENT in SPIRE\'s words', async t => {
  const stand = await startSpireApiStand(t)
  const before = await stand.call<BundleMessage>('GetBundle', {}, 'bundle')
  t.same(await stand.failure('AppendBundle', {}, 'bundle'), { code: CODE.INVALID_ARGUMENT, details: 'no authorities to append' })
  t.same(await stand.failure('AppendBundle', { x509_authorities: [], jwt_authorities: [] }, 'bundle'), { code: CODE.INVALID_ARGUMENT, details: 'no authorities to append' })
  t.match(await stand.failure('AppendBundle', { x509_authorities: [{ asn1: Buffer.from('not a certificate') }] }, 'bundle'),
    { code: CODE.INVALID_ARGUMENT, details: /^failed to convert X\.509 authority: / })
  t.same(await stand.failure('AppendBundle', { jwt_authorities: [{ public_key: secondJwtKey, key_id: '' }] }, 'bundle'),
    { code: CODE.INVALID_ARGUMENT, details: 'failed to convert JWT authority: missing key ID' })
  t.match(await stand.failure('AppendBundle', { jwt_authorities: [{ public_key: Buffer.from('junk'), key_id: 'k' }], x509_authorities: [{ asn1: Buffer.from('x') }] }, 'bundle'),
    { code: CODE.INVALID_ARGUMENT, details: /^failed to convert JWT authority: / }, 'JWT authorities are converted first, as SPIRE does')
  const leaf = createTestCa(TD).issueSvid(`spiffe://${TD}/app`).leaf.raw
  t.match(await stand.failure('AppendBundle', { x509_authorities: [{ asn1: leaf }] }, 'bundle'),
    { code: CODE.INVALID_ARGUMENT, details: /^failed to convert X\.509 authority: not a CA certificate/ }, 'stricter than SPIRE: no SVID can chain to a leaf')
  const ourKeyId = before.jwt_authorities[0].key_id
  t.match(await stand.failure('AppendBundle', { jwt_authorities: [{ public_key: secondJwtKey, key_id: ourKeyId }] }, 'bundle'),
    { code: CODE.INVALID_ARGUMENT, details: new RegExp(`key ID "${ourKeyId}" is already in the bundle \\(the CA's\\) with another key`) })
  t.same(await stand.call<BundleMessage>('GetBundle', {}, 'bundle'), before, 'nothing changed')
})

void t.test('append bundle – X.509 and JWT authorities join GetBundle and the admin API\'s bundle, the sequence grows once, each is added once', async t => {
  const stand = await startSpireApiStand(t)
  const before = await stand.call<BundleMessage>('GetBundle', {}, 'bundle')
  const expiresAt = inAnHour()
  const request = { x509_authorities: [{ asn1: second.ca.certDer }], jwt_authorities: [{ public_key: secondJwtKey, key_id: second.kid, expires_at: expiresAt }] }
  const answered = await append(stand, request)
  t.same(answered.x509_authorities.map(a => base64(a.asn1)), [...before.x509_authorities.map(a => base64(a.asn1)), base64(second.ca.certDer)], 'the CA\'s roots, then the appended one')
  t.same(answered.jwt_authorities.map(k => [k.key_id, Number(k.expires_at)]), [...before.jwt_authorities.map(k => [k.key_id, Number(k.expires_at)]), [second.kid, expiresAt]], 'JWT keys with their expiry')
  t.equal(Number(answered.sequence_number), Number(before.sequence_number) + 1, 'the sequence number grows')
  t.same(await stand.call<BundleMessage>('GetBundle', {}, 'bundle'), answered, 'GetBundle answers the same')

  const repeated = await append(stand, { ...request, x509_authorities: [...request.x509_authorities, { asn1: before.x509_authorities[0].asn1 }] })
  t.same(repeated, answered, 'what the bundle holds already (appended, or the CA\'s) is not added again; the sequence stays')
  const masked = await append(stand, { ...request, output_mask: { sequence_number: true } })
  t.same([masked.x509_authorities, masked.jwt_authorities, masked.sequence_number], [[], [], answered.sequence_number], 'the output mask applies')

  const changes = stand.logs().filter(line => line.msg === 'SPIRE server API: AppendBundle')
  t.match(changes[0], { caller: { uid, pid: process.pid }, authorities: [{ id: `jwt:${second.kid}`, code: 'OK' }, { id: /^x509:[0-9a-f]{64}$/, code: 'OK' }] }, 'each append is logged with its caller')
  t.match(changes[1], { authorities: [{ code: 'ALREADY_EXISTS' }, { code: 'ALREADY_EXISTS' }, { code: 'ALREADY_EXISTS' }] })

  const admin = new AdminClient(join(stand.dir, 'admin.sock'))
  t.teardown(() => admin.close())
  const shown = await admin.getBundle()
  t.same([shown.x509_authority_count, shown.jwt_key_count, shown.sequence], [answered.x509_authorities.length, answered.jwt_authorities.length, Number(answered.sequence_number)],
    'chaperone bundle show: our bundle with the appended authorities')
  t.equal((await admin.getCaStatus()).bundle_sequence, shown.sequence, 'chaperone ca show: the same sequence')
})

void t.test('append bundle – every workload gets the appended authorities, pushed to its watch; JWT-SVIDs signed with an appended key validate', async t => {
  const stand = await startSpireApiStand(t)
  const { client, bundles } = await watchingWorkload(t, stand)
  t.notOk(bundles[0].includes(base64(second.ca.certDer)))
  const token = await second.signJwt('/app', 'the-audience')
  await t.rejects(client.validateJwtSvid(token, 'the-audience'), { code: 'ERR_WORKLOAD_API_INVALID_REQUEST' }, 'a token signed with a key not in our bundle is refused')

  await append(stand, { x509_authorities: [{ asn1: second.ca.certDer }], jwt_authorities: [{ public_key: secondJwtKey, key_id: second.kid }] })
  await until(() => bundles.at(-1)?.includes(base64(second.ca.certDer)) === true, 'the appended root on the watch')
  t.pass('an open X509-SVID stream gets the appended root at once')
  t.ok((await client.fetchX509Bundles()).get(TD)?.authorities.some(cert => cert.raw.equals(second.ca.certDer)), 'FetchX509Bundles: in our trust domain\'s bundle')
  t.ok((await client.fetchJwtBundles()).get(TD)?.findKey(second.kid), 'FetchJWTBundles: the appended key')
  const validated = await client.validateJwtSvid(token, 'the-audience')
  t.equal(validated.spiffeId, `spiffe://${TD}/app`, 'ValidateJWTSVID accepts a token signed with the appended key')

  const admin = new AdminClient(join(stand.dir, 'admin.sock'))
  t.teardown(() => admin.close())
  const removed = await admin.removeAppendedAuthority({ sha256: second.ca.cert.fingerprint256 })
  t.match(removed, { removed: { kind: 'x509', sha256: second.ca.cert.fingerprint256.replace(/:/g, '').toLowerCase() }, authorities: [{ kind: 'jwt', key_id: second.kid, expired: false }] })
  await until(() => bundles.at(-1)?.includes(base64(second.ca.certDer)) === false, 'the removed root gone from the watch')
  t.pass('a removal is pushed too')
  await admin.removeAppendedAuthority({ keyId: second.kid })
  await t.rejects(client.validateJwtSvid(token, 'the-audience'), { code: 'ERR_WORKLOAD_API_INVALID_REQUEST' }, 'and a removed key validates nothing')
  const ours = await stand.call<BundleMessage>('GetBundle', {}, 'bundle')
  await t.rejects(admin.removeAppendedAuthority({ keyId: ours.jwt_authorities[0].key_id }), { code: 'ERR_AUTHORITY_OF_CA', message: /is the CA's own, not an appended one/ })
  await t.rejects(admin.removeAppendedAuthority({ sha256: base64(ours.x509_authorities[0].asn1) }), { code: 'ERR_AUTHORITY_INVALID' }, 'a fingerprint is hex')
  await t.rejects(admin.removeAppendedAuthority({ keyId: second.kid }), { code: 'ERR_AUTHORITY_NOT_FOUND' })
})

void t.test('append bundle – an appended authority that expires is no longer served, and watches are told when it expires', async t => {
  const stand = await startSpireApiStand(t)
  const { client, bundles } = await watchingWorkload(t, stand)
  const shortLived = createTestCa(TD, { notAfter: new Date(Date.now() + 2500) })
  const soon = Math.floor(Date.now() / 1000) + 2
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' })
  const answered = await append(stand, { x509_authorities: [{ asn1: shortLived.certDer }], jwt_authorities: [{ public_key: key, key_id: 'short-lived', expires_at: soon }] })
  t.ok(answered.jwt_authorities.some(k => k.key_id === 'short-lived'), 'served while unexpired')
  await until(() => bundles.at(-1)?.includes(base64(shortLived.certDer)) === true, 'the short-lived root on the watch')
  await until(() => bundles.at(-1)?.includes(base64(shortLived.certDer)) === false, 'the expiry pushed to the watch')
  t.pass('the watch is told at the expiry')
  const after = await stand.call<BundleMessage>('GetBundle', {}, 'bundle')
  t.notOk(after.x509_authorities.some(a => Buffer.from(a.asn1).equals(shortLived.certDer)), 'GetBundle no longer has the root')
  t.notOk(after.jwt_authorities.some(k => k.key_id === 'short-lived'), 'nor the expired key')
  t.notOk((await client.fetchJwtBundles()).get(TD)?.findKey('short-lived'), 'nor does FetchJWTBundles')
})

void t.test('append bundle – appended authorities survive an agent restart', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'chaperone-append-restart-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const serverSocket = join(dir, 'server', 'api.sock')
  const start = async (): Promise<Agent> => await Agent.start(loadAgentConfig(undefined, {
    trustDomain: TD, dataDir: join(dir, 'data'), socket: join(dir, 'workload.sock'), adminSocket: join(dir, 'admin.sock'), serverSocket
  }), pino({ level: 'silent' }))
  const call = async (method: string, request: object): Promise<BundleMessage> => {
    const client: Client = new (BundleService())(`unix:${serverSocket}`, credentials.createInsecure())
    try {
      return await new Promise((resolve, reject) => {
        const fn = (client as unknown as Record<string, (req: object, md: Metadata, cb: (err: ServiceError | null, value?: BundleMessage) => void) => void>)[method]
        fn.call(client, request, new Metadata(), (err, value) => { if (err === null) resolve(value as BundleMessage); else reject(err) })
      })
    } finally {
      client.close()
    }
  }
  const first = await start()
  const appended = await call('AppendBundle', { x509_authorities: [{ asn1: second.ca.certDer }], jwt_authorities: [{ public_key: secondJwtKey, key_id: second.kid, expires_at: inAnHour() }] })
  await first.stop()
  const again = await start()
  t.teardown(async () => await again.stop())
  t.same(await call('GetBundle', {}), appended, 'the same bundle, sequence number and JWT expiries after the restart')
})
