/**
 * A Chaperone device becomes a CA under a real `spire-server` (SPIRE_VERSION), as a nested SPIRE server does: it
 * attests with x509pop (x509pop-device.ts), the operator registers its entry with `spire-server entry create
 * -parentID <agent ID> … -downstream`, the device finds that entry among those authorized to its agent, gets the
 * entry's X509-SVID and, as that entry, a CA from NewDownstreamX509CA. OpenSSL must chain the CA, and a leaf the CA
 * key signs, to SPIRE's bundle; SPIRE's subject (OU=DOWNSTREAM-1) and its lifetime cap must show. Refusals: no
 * downstream entry (our error says how to register one), an entry without -downstream (SPIRE's PermissionDenied
 * passed through). GetBundle must give SPIRE's roots and JWT keys. Part of `npm run test:interop`.
 */
import t from 'tap'
import { X509Certificate } from 'node:crypto'
import { generateKeyPair } from '../../certs-test'
import { parseTrustDomain } from '../../spiffe/id'
import { SpiffeBundle } from '../../spiffe/spiffe-bundle'
import { verifyX509Svid } from '../../spiffe/x509-svid'
import { certificateFacts, issueCertificate } from '../../agent/ca/x509-certificate'
import { signingKeyOf } from '../../agent/ca/keys'
import { chooseDownstreamEntry, fetchAuthorizedEntries, fetchUpstreamBundle, newDeviceCa, newEntrySvid, obtainDeviceCa } from '../../agent/upstream'
import type { AgentSvid, DeviceCa, DeviceEnrolment, UpstreamServer } from '../../agent/upstream'
import { waitFor } from '../helpers/command'
import { interopSkip, SPIRE_VERSION } from './peers'
import { attestDevice, opensslVerifyAgainstSpire, startX509popStand } from './x509pop-device'

const skip = interopSkip()
const TD = parseTrustDomain('fleet.example')
const HOUR = 3600

async function failure (work: Promise<unknown>): Promise<unknown> {
  return await work.then(() => new Error('succeeded, but should have failed'), (err: unknown) => err)
}

/** obtainDeviceCa once SPIRE's entry cache (reloaded every 5 s) has the entry just created. */
async function enrolWhenAuthorized (server: UpstreamServer, agent: AgentSvid, preferredTtlSeconds: number): Promise<DeviceEnrolment> {
  return await waitFor('SPIRE to authorize the downstream entry to the agent', 30_000, async () =>
    await obtainDeviceCa(server, agent, { preferredTtlSeconds }).catch((err: { code?: string }) => {
      if (err.code === 'ERR_DOWNSTREAM_ENTRY_MISSING') return undefined
      throw err
    }))
}

/** A workload X509-SVID for `id` signed with the device CA's key, as the device's own CA will sign them. */
async function leafOf (ca: DeviceCa, id: string): Promise<Buffer> {
  const facts = await certificateFacts(Buffer.from(ca.chain[0]))
  const now = Date.now()
  return await issueCertificate({ subject: facts.subject, keyId: facts.keyId, signingKey: await signingKeyOf(ca.key) }, {
    role: 'svid',
    subject: [['O', 'Chaperone device']],
    publicKey: generateKeyPair().publicKey,
    notBefore: new Date(now - 10_000),
    notAfter: new Date(Math.min(now + HOUR * 1000, ca.notAfter.getTime())),
    uri: id
  })
}

void t.test(`a device gets its CA from spire-server ${SPIRE_VERSION} (NewDownstreamX509CA)`, { skip, timeout: 600_000 }, async t => {
  const { maker, spire, server } = await startX509popStand(t, TD)
  const spireRoot = new X509Certificate(await spire.bundlePem())

  await t.test('a registered device: its downstream SVID, then a CA that chains to SPIRE\'s bundle', async t => {
    const serial = 'SN-CA-0001'
    const agent = await attestDevice(server, maker.issueBirthCert(serial))
    const deviceId = `spiffe://${TD.name}/device/${serial}`
    await spire.createEntry({ parentId: agent.id.toString(), spiffeId: deviceId, selectors: [`x509pop:subject:cn:${serial}`], downstream: true })
    const { entry, downstreamSvid, ca } = await enrolWhenAuthorized(server, agent, HOUR)

    t.equal(entry.spiffeId, deviceId, 'the downstream entry parented on the agent is chosen')
    t.equal(downstreamSvid.id.toString(), deviceId, 'BatchNewX509SVID gives the entry\'s X509-SVID')
    t.match(await opensslVerifyAgainstSpire(spire, downstreamSvid.chain, 'downstream-svid'), /: OK/, 'openssl verifies the downstream SVID')

    const caCert = new X509Certificate(ca.chain[0])
    t.ok(caCert.ca, 'the device CA is a CA')
    t.match(caCert.subject, /OU=DOWNSTREAM-1/, 'SPIRE names it OU=DOWNSTREAM-1 (one CA above it)')
    t.match(await opensslVerifyAgainstSpire(spire, ca.chain, 'device-ca'), /: OK/, 'openssl chains the device CA to SPIRE\'s bundle')
    t.same(ca.roots.map(der => der.toString('base64')), [spireRoot.raw.toString('base64')], 'the roots are SPIRE\'s')
    t.ok(ca.notAfter <= new Date(spireRoot.validTo), 'NotAfter is within SPIRE\'s CA')
    t.notOk(ca.capped, 'an hour fits within SPIRE\'s CA: not capped')
    t.ok(Math.abs(ca.notAfter.getTime() - Date.now() - HOUR * 1000) < 60_000, 'the preferred TTL is granted')

    const leafId = `${deviceId}/workload`
    const leaf = await leafOf(ca, leafId)
    t.match(await opensslVerifyAgainstSpire(spire, [leaf, ...ca.chain], 'device-leaf'), /: OK/, 'openssl verifies a leaf the device CA signed against SPIRE\'s bundle')
    const bundle = new SpiffeBundle(TD, { x509: server.bundle })
    t.equal(verifyX509Svid([leaf, ...ca.chain], bundle).toString(), leafId, 'so does our X509-SVID verification')

    const longer = await newDeviceCa(server, downstreamSvid, { preferredTtlSeconds: 48 * HOUR })
    t.ok(longer.capped, 'two days reach past SPIRE\'s CA (ca_ttl 24h): capped')
    t.equal(longer.notAfter.getTime(), new Date(spireRoot.validTo).getTime(), 'NotAfter is SPIRE\'s CA NotAfter')
  })

  await t.test('a device without a downstream entry gets our error saying how to register it', async t => {
    const agent = await attestDevice(server, maker.issueBirthCert('SN-CA-0002'))
    t.match(await failure(obtainDeviceCa(server, agent)), {
      code: 'ERR_DOWNSTREAM_ENTRY_MISSING',
      message: new RegExp(`no downstream entry is authorized to agent ${agent.id.toString()}; register the device: spire-server entry create -parentID ${agent.id.toString()} `)
    })
  })

  await t.test('an entry without -downstream: our error names it, and SPIRE refuses NewDownstreamX509CA to its SVID', async t => {
    const serial = 'SN-CA-0003'
    const agent = await attestDevice(server, maker.issueBirthCert(serial))
    const plainId = `spiffe://${TD.name}/device/${serial}`
    await spire.createEntry({ parentId: agent.id.toString(), spiffeId: plainId, selectors: [`x509pop:subject:cn:${serial}`] })
    const entries = await waitFor('SPIRE to authorize the entry to the agent', 30_000, async () => {
      const found = await fetchAuthorizedEntries(server, agent)
      return found.some(entry => entry.spiffeId === plainId) ? found : undefined
    })
    t.throws(() => chooseDownstreamEntry(entries, agent.id), {
      code: 'ERR_DOWNSTREAM_ENTRY_MISSING',
      message: /authorized without -downstream: spiffe:\/\/fleet\.example\/device\/SN-CA-0003 \(entry /
    })
    const plain = entries.find(entry => entry.spiffeId === plainId)
    if (plain === undefined) throw new Error('unreachable: waited for the entry')
    const svid = await newEntrySvid(server, agent, plain)
    t.equal(svid.id.toString(), plainId, 'the entry\'s X509-SVID is minted all the same')
    t.match(await failure(newDeviceCa(server, svid)), {
      code: 'ERR_UPSTREAM_DENIED',
      message: /authorization denied for method \/spire\.api\.server\.svid\.v1\.SVID\/NewDownstreamX509CA/
    })
  })

  await t.test('GetBundle gives SPIRE\'s roots and JWT keys, with or without an SVID', async t => {
    const shown = SpiffeBundle.parse(TD, await spire.server('bundle', 'show', '-format', 'spiffe'))
    const agent = await attestDevice(server, maker.issueBirthCert('SN-CA-0004'))
    for (const [how, bundle] of [['plain TLS', await fetchUpstreamBundle(server)], ['mTLS', await fetchUpstreamBundle(server, { svid: agent })]] as const) {
      t.same(bundle.x509.authorities.map(cert => cert.fingerprint256), shown.x509.authorities.map(cert => cert.fingerprint256), `${how}: the roots of spire-server bundle show`)
      t.same([...bundle.jwt.keys.keys()].sort(), [...shown.jwt.keys.keys()].sort(), `${how}: its JWT key IDs`)
      t.ok(bundle.jwt.size > 0, `${how}: SPIRE has a JWT key`)
    }
  })
})
