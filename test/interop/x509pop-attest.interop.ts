/**
 * A Chaperone device proves its birth certificate to a real `spire-server` (SPIRE_VERSION) with x509pop and gets
 * its agent X509-SVID: the server's x509pop NodeAttestor trusts a test manufacturer's root (certs-test/birth-certs.ts),
 * the device attests over the server's TCP port trusting the server's bundle, as SPIRE's agent would with
 * `trust_bundle_path`. SPIRE must list the agent with x509pop's selectors, and OpenSSL must verify the SVID against
 * SPIRE's bundle. Refusals carry SPIRE's reasons: a foreign manufacturer, an expired birth certificate, one without
 * digitalSignature, a challenge signed with the wrong key; a server that is not the one the bundle names is refused by
 * us. Part of `npm run test:interop`.
 */
import t from 'tap'
import type { Test } from 'tap'
import { createHash } from 'node:crypto'
import { createTestCa, generateKeyPair, TestManufacturer } from '../../certs-test'
import type { BirthCert } from '../../certs-test'
import { parseTrustDomain } from '../../spiffe/id'
import { attestAgent, birthCredential, upstreamServer, x509popAgentId, x509popAttestor } from '../../agent/upstream'
import type { NodeAttestor, UpstreamServer } from '../../agent/upstream'
import { interopSkip, SPIRE_VERSION } from './peers'
import type { SpireStand } from './spire-stand'
import { opensslVerifyAgainstSpire, startX509popStand } from './x509pop-device'

const skip = interopSkip()
const TD = parseTrustDomain('fleet.example')

interface ListedAgent { id: { trust_domain: string, path: string }, attestation_type: string, selectors?: Array<{ type: string, value: string }> }

/** The selectors SPIRE keeps for `id` (`spire-server agent list -output json`), as `type:value`. */
async function listedSelectors (spire: SpireStand, id: string): Promise<string[] | undefined> {
  const listed = JSON.parse(await spire.server('agent', 'list', '-attestationType', 'x509pop', '-output', 'json')) as { agents?: ListedAgent[] }
  const agent = listed.agents?.find(a => `spiffe://${a.id.trust_domain}${a.id.path}` === id)
  return agent?.selectors?.map(s => `${s.type}:${s.value}`).sort()
}

/** The selectors x509pop derives from a birth certificate (SPIRE's buildSelectorValues), for a chain to `maker`. */
function expectedSelectors (birth: BirthCert, maker: TestManufacturer): string[] {
  const sha1 = (der: Buffer): string => createHash('sha1').update(der).digest('hex')
  const cas = [...birth.chain.slice(1), maker.root.certDer]
  return [
    `x509pop:subject:cn:${birth.serial}`,
    ...cas.map(der => `x509pop:ca:fingerprint:${sha1(der)}`),
    `x509pop:serialnumber:${birth.leaf.serialNumber.toLowerCase()}`
  ].sort()
}

async function attestsAndIsListed (t: Test, spire: SpireStand, server: UpstreamServer, maker: TestManufacturer, birth: BirthCert): Promise<void> {
  const credential = birthCredential(birth.chain, birth.key)
  const svid = await attestAgent({ server, attestor: x509popAttestor(credential) })
  const expectedId = x509popAgentId(TD, credential).toString()
  t.equal(svid.id.toString(), expectedId, 'SPIRE assigns spiffe://<td>/spire/agent/x509pop/<sha1 of the birth certificate>')
  t.ok(svid.reattestable, 'x509pop agents can re-attest')
  t.ok(svid.expiresAt.getTime() > Date.now(), 'the SVID is current')
  t.same(await listedSelectors(spire, expectedId), expectedSelectors(birth, maker), 'spire-server agent list shows the agent with x509pop\'s selectors')
  t.match(await opensslVerifyAgainstSpire(spire, svid.chain, 'agent-svid'), /: OK/, 'openssl verifies the agent SVID against SPIRE\'s bundle')
}

async function refusal (attestor: NodeAttestor, server: UpstreamServer): Promise<unknown> {
  return await attestAgent({ server, attestor }).then(() => new Error('attested, but should have been refused'), (err: unknown) => err)
}

void t.test(`x509pop: a device attests to spire-server ${SPIRE_VERSION} with its birth certificate`, { skip, timeout: 600_000 }, async t => {
  const { maker, spire, server } = await startX509popStand(t, TD)

  await t.test('an EC P-256 device attests and SPIRE lists it', async t => {
    await attestsAndIsListed(t, spire, server, maker, maker.issueBirthCert('SN-EC-0001'))
  })

  await t.test('an RSA-2048 device attests and SPIRE lists it', async t => {
    await attestsAndIsListed(t, spire, server, maker, maker.issueBirthCert('SN-RSA-0002', { keyType: 'rsa-2048' }))
  })

  await t.test('a device attests again with the same birth certificate (x509pop can re-attest)', async t => {
    const birth = maker.issueBirthCert('SN-EC-0003')
    const attestor = x509popAttestor(birthCredential(birth.chain, birth.key))
    const first = await attestAgent({ server, attestor })
    const second = await attestAgent({ server, attestor })
    t.equal(second.id.toString(), first.id.toString(), 'the same agent ID')
    t.not(second.chain[0].toString('hex'), first.chain[0].toString('hex'), 'a new SVID')
  })

  await t.test('a birth certificate from a foreign manufacturer is refused with SPIRE\'s reason', async t => {
    const birth = new TestManufacturer({ name: 'Foreign Devices' }).issueBirthCert('SN-FOREIGN-0004')
    t.match(await refusal(x509popAttestor(birthCredential(birth.chain, birth.key)), server), {
      code: 'ERR_NODE_ATTESTATION_DENIED',
      message: /certificate verification failed: x509: certificate signed by unknown authority/
    })
  })

  await t.test('an expired birth certificate is refused with SPIRE\'s reason', async t => {
    const birth = maker.issueBirthCert('SN-EXPIRED-0005', { expired: true })
    t.match(await refusal(x509popAttestor(birthCredential(birth.chain, birth.key)), server), {
      code: 'ERR_NODE_ATTESTATION_DENIED',
      message: /certificate verification failed: x509: certificate has expired/
    })
  })

  await t.test('a birth certificate without digitalSignature is refused with SPIRE\'s reason', async t => {
    const birth = maker.issueBirthCert('SN-NODS-0006', { withoutDigitalSignature: true })
    // SPIRE answers Internal here ("unable to generate challenge: …"), not PermissionDenied.
    t.match(await refusal(x509popAttestor(birthCredential(birth.chain, birth.key)), server), {
      code: 'ERR_NODE_ATTESTATION_FAILED',
      message: /certificate not intended for digital signature use/
    })
  })

  for (const keyType of ['ec-p256', 'rsa-2048'] as const) {
    await t.test(`a challenge signed with another ${keyType} key is refused with SPIRE's reason`, async t => {
      const birth = maker.issueBirthCert(`SN-WRONGKEY-${keyType}`, { keyType })
      // The right chain with a key that is not its own: what a device that copied someone's certificate can do.
      const impostor = x509popAttestor({ chain: birth.chain, key: generateKeyPair(keyType).privateKey })
      t.match(await refusal(impostor, server), {
        code: 'ERR_NODE_ATTESTATION_DENIED',
        message: /challenge response verification failed: (ECDSA|RSA) signature verify failed/
      })
    })
  }

  await t.test('a server the trust bundle does not vouch for is refused by us', async t => {
    const birth = maker.issueBirthCert('SN-EC-0007')
    const attestor = x509popAttestor(birthCredential(birth.chain, birth.key))
    const otherBundle = upstreamServer(spire.serverAddress, TD, createTestCa(TD.name).certPem)
    t.match(await refusal(attestor, otherBundle), { code: 'ERR_UPSTREAM_IDENTITY' }, 'another CA of the same trust domain')
    const otherDomain = upstreamServer(spire.serverAddress, parseTrustDomain('other.example'), await spire.bundlePem())
    t.match(await refusal(attestor, otherDomain), { code: 'ERR_UPSTREAM_IDENTITY', message: /is not spiffe:\/\/other\.example\/spire\/server/ }, 'the right roots, but another trust domain expected')
    t.equal(await listedSelectors(spire, x509popAgentId(TD, birthCredential(birth.chain, birth.key)).toString()), undefined, 'nothing reached SPIRE')
  })
})
