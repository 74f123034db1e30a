import t from 'tap'
import { X509Certificate, generateKeyPairSync } from 'node:crypto'
import type { Test } from 'tap'
import { parseSpiffeId, verifyX509Svid, verifyX509SvidChain } from '../../../spiffe'
import type { AgentCa } from '../../../agent/ca'
import { OPENSSL_MISSING, certText } from '../../helpers/openssl'
import { ManualClock, openCa, opensslVerify, tempDir, td } from './fixtures/ca-fixtures'

const workload = td.id('/ns/prod/sa/web')

/** Both verifiers accept the chain, and openssl shows the X509-SVID profile. */
function checkSvid (t: Test, ca: AgentCa, chain: Buffer[]): void {
  t.equal(verifyX509Svid(chain, ca.bundle()).toString(), workload.toString(), 'verifyX509Svid accepts it')
  const verified = opensslVerify(tempDir(t), chain, ca.bundle())
  t.ok(verified.ok, `openssl verify accepts it: ${verified.output}`)
  const text = certText(chain[0])
  t.match(text, /X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment, Key Agreement/)
  t.match(text, /X509v3 Extended Key Usage:\s+TLS Web Server Authentication, TLS Web Client Authentication/)
  t.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/)
  t.match(text, new RegExp(`X509v3 Subject Alternative Name:\\s+URI:${workload.toString()}`))
  t.match(text, /Subject: O ?= ?Chaperone/)
}

for (const keyType of ['ec-p256', 'rsa-2048'] as const) {
  void t.test(`x509-svid – ${keyType}: a minted SVID with a generated key verifies, and its key is returned`, { skip: OPENSSL_MISSING }, async t => {
    const ca = await openCa(t, { keyType })
    const svid = await ca.mintX509Svid({ spiffeId: workload })
    t.equal(svid.chain.length, 1, 'a self-signed root is in the bundle, never in the chain')
    checkSvid(t, ca, svid.chain)
    const leaf = new X509Certificate(svid.chain[0])
    t.ok(svid.privateKey !== undefined && leaf.checkPrivateKey(svid.privateKey), 'the private key matches the leaf')
    t.equal(leaf.publicKey.asymmetricKeyType, keyType === 'ec-p256' ? 'ec' : 'rsa', 'the SVID key has the CA\'s key type')
    const seconds = (new Date(leaf.validTo).getTime() - new Date(leaf.validFrom).getTime()) / 1000
    t.equal(seconds, 3600 + 10, 'default TTL 1 h, NotBefore backdated 10 s')
    t.equal(svid.expiresAt.getTime(), new Date(leaf.validTo).getTime())
    t.match(certText(ca.bundle().x509.authorities[0].raw), /CA:TRUE[\s\S]*Certificate Sign, CRL Sign[\s\S]*URI:spiffe:\/\/plant.example\n/)
  })
}

void t.test('x509-svid – a caller-supplied public key is certified as is; no private key comes back', { skip: OPENSSL_MISSING }, async t => {
  const ca = await openCa(t)
  for (const options of [{ type: 'ec', namedCurve: 'P-256' }, { type: 'ec', namedCurve: 'P-384' }, { type: 'rsa', modulusLength: 2048 }] as const) {
    const keys = options.type === 'ec' ? generateKeyPairSync('ec', options) : generateKeyPairSync('rsa', options)
    const svid = await ca.mintX509Svid({ spiffeId: workload, publicKey: keys.publicKey })
    t.equal(svid.privateKey, undefined)
    t.ok(new X509Certificate(svid.chain[0]).checkPrivateKey(keys.privateKey), `the ${JSON.stringify(options)} key is the leaf's`)
    checkSvid(t, ca, svid.chain)
  }
})

void t.test('x509-svid – DNS names become DNS SANs, the first also the CN; identity stays the URI SAN', { skip: OPENSSL_MISSING }, async t => {
  const ca = await openCa(t)
  const svid = await ca.mintX509Svid({ spiffeId: workload, dnsNames: ['web.plant.example', '*.web.local'] })
  checkSvid(t, ca, svid.chain)
  const leaf = new X509Certificate(svid.chain[0])
  t.equal(leaf.subjectAltName, `URI:${workload.toString()}, DNS:web.plant.example, DNS:*.web.local`)
  t.equal(leaf.subject, 'O=Chaperone\nCN=web.plant.example')
  t.equal(verifyX509SvidChain(svid.chain, ca.bundle()).id.toString(), workload.toString())
})

void t.test('x509-svid – per-request TTL, capped at the signing authority\'s NotAfter', async t => {
  const clock = new ManualClock()
  const ca = await openCa(t, { clock: clock.read, caTtlSeconds: 7200 })
  const short = await ca.mintX509Svid({ spiffeId: workload, ttlSeconds: 60 })
  t.equal(short.expiresAt.getTime(), clock.now.getTime() + 60_000)
  const authority = ca.status().x509[0]
  const long = await ca.mintX509Svid({ spiffeId: workload, ttlSeconds: 30 * 86400 })
  t.same(long.expiresAt, authority.notAfter, 'never outlives the authority')
  t.same(new Date(new X509Certificate(long.chain[0]).validTo), authority.notAfter)
  t.equal(verifyX509Svid(long.chain, ca.bundle(), { now: new Date(authority.notAfter.getTime() - 1000) }).toString(), workload.toString())
})

void t.test('x509-svid – serial numbers are random, positive and 128-bit', async t => {
  const ca = await openCa(t)
  const serials = new Set<string>()
  for (let i = 0; i < 20; i++) {
    const serial = new X509Certificate((await ca.mintX509Svid({ spiffeId: workload })).chain[0]).serialNumber
    const value = BigInt(`0x${serial}`)
    t.ok(value > 0n && value < 2n ** 128n, `serial ${serial} is positive and fits 128 bits`)
    serials.add(serial)
  }
  t.equal(serials.size, 20)
})

void t.test('x509-svid – bad requests are refused with ERR_CA_REQUEST_INVALID naming the problem', async t => {
  const ca = await openCa(t)
  const cases: Array<[string, Parameters<AgentCa['mintX509Svid']>[0], RegExp]> = [
    ['another trust domain', { spiffeId: parseSpiffeId('spiffe://other.example/web') }, /not in trust domain plant\.example/],
    ['no path', { spiffeId: td.id('') }, /has no path/],
    ['zero TTL', { spiffeId: workload, ttlSeconds: 0 }, /ttlSeconds must be a positive whole number/],
    ['fractional TTL', { spiffeId: workload, ttlSeconds: 1.5 }, /ttlSeconds/],
    ['bad DNS name', { spiffeId: workload, dnsNames: ['web..local'] }, /"web\.\.local" is not a DNS name/],
    ['DNS name with a space', { spiffeId: workload, dnsNames: ['a b'] }, /is not a DNS name/],
    ['private key given', { spiffeId: workload, publicKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey }, /must be a public KeyObject/],
    ['weak key', { spiffeId: workload, publicKey: generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey }, /rsa \(1024 bits\) key/],
    ['Ed25519 key', { spiffeId: workload, publicKey: generateKeyPairSync('ed25519').publicKey }, /ed25519 key/],
    ['a string ID', { spiffeId: workload.toString() as unknown as typeof workload }, /must be a SpiffeId/]
  ]
  for (const [name, request, message] of cases) {
    await t.rejects(ca.mintX509Svid(request), { code: 'ERR_CA_REQUEST_INVALID', message }, name)
  }
})

void t.test('x509-svid – a closed CA refuses to mint', async t => {
  const ca = await openCa(t)
  ca.close()
  await t.rejects(ca.mintX509Svid({ spiffeId: workload }), { code: 'ERR_CA_CLOSED' })
  await t.rejects(ca.mintJwtSvid({ spiffeId: workload, audience: ['a'] }), { code: 'ERR_CA_CLOSED' })
})
