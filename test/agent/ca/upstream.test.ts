import t from 'tap'
import type { Test } from 'tap'
import { X509Certificate, generateKeyPairSync } from 'node:crypto'
import type { AgentCa } from '../../../agent/ca'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { verifyX509Svid } from '../../../spiffe'
import { OPENSSL_MISSING, certText, openssl } from '../../helpers/openssl'
import { ManualClock, openCa, opensslVerify, tempDir, td } from './fixtures/ca-fixtures'

const workload = td.id('/edge/app')

interface OperatorCa {
  certFile: string
  keyFile: string
}

const KEY_OPTIONS = {
  'ec-p256': ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  'ec-p384': ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'],
  'rsa-3072': ['-newkey', 'rsa:3072']
}

/** An operator's CA made by the openssl CLI: self-signed, or signed by `issuer`; `ca: false` makes a non-CA certificate. */
function operatorCa (dir: string, name: string, options: { key?: keyof typeof KEY_OPTIONS, issuer?: OperatorCa, ca?: boolean } = {}): OperatorCa {
  const files = { certFile: join(dir, `${name}.pem`), keyFile: join(dir, `${name}.key`) }
  const extensions = options.ca === false
    ? ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature']
    : ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign']
  const run = (args: string[]): void => {
    const result = openssl(args)
    if (!result.ok) throw new Error(`openssl ${args.join(' ')} failed: ${result.output}`)
  }
  const key = KEY_OPTIONS[options.key ?? 'ec-p256']
  const subject = ['-subj', `/O=Operator/CN=${name}`]
  if (options.issuer === undefined) {
    run(['req', '-x509', ...key, '-nodes', '-keyout', files.keyFile, '-out', files.certFile, '-days', '30', ...subject, ...extensions.flatMap(ext => ['-addext', ext])])
    return files
  }
  const csr = join(dir, `${name}.csr`)
  const extFile = join(dir, `${name}.ext`)
  writeFileSync(extFile, [...extensions, 'subjectKeyIdentifier=hash', 'authorityKeyIdentifier=keyid'].join('\n'))
  run(['req', '-new', ...key, '-nodes', '-keyout', files.keyFile, '-out', csr, ...subject])
  run(['x509', '-req', '-in', csr, '-CA', options.issuer.certFile, '-CAkey', options.issuer.keyFile, '-days', '20', '-extfile', extFile, '-out', files.certFile])
  return files
}

function checkVerifies (t: Test, dir: string, chain: Buffer[], ca: AgentCa): void {
  t.equal(verifyX509Svid(chain, ca.bundle()).toString(), workload.toString(), 'verifyX509Svid accepts the chain')
  const verified = opensslVerify(dir, chain, ca.bundle())
  t.ok(verified.ok, `openssl verify accepts the chain: ${verified.output}`)
}

for (const key of ['ec-p256', 'ec-p384', 'rsa-3072'] as const) {
  void t.test(`upstream – an operator root (${key}, made by openssl) signs our intermediate; SVIDs chain to it`, { skip: OPENSSL_MISSING }, async t => {
    const dir = tempDir(t)
    const root = operatorCa(dir, 'Operator Root', { key })
    const ca = await openCa(t, { upstream: root })
    const rootDer = new X509Certificate(readFileSync(root.certFile)).raw
    t.same(ca.bundle().x509.authorities.map(cert => cert.raw), [rootDer], 'the bundle holds the operator root only')
    t.equal(ca.status().upstream, true)
    for (const publicKey of [undefined, generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey]) {
      const svid = await ca.mintX509Svid({ spiffeId: workload, dnsNames: ['app.local'], publicKey })
      t.equal(svid.chain.length, 2, 'leaf and our intermediate, never the root')
      checkVerifies(t, dir, svid.chain, ca)
      const intermediate = new X509Certificate(svid.chain[1])
      t.ok(intermediate.checkIssued(new X509Certificate(rootDer)), 'our intermediate is issued by the operator root')
      t.match(certText(svid.chain[1]), /CA:TRUE[\s\S]*Certificate Sign, CRL Sign[\s\S]*URI:spiffe:\/\/plant.example\n/)
    }
  })
}

void t.test('upstream – an operator intermediate with bundleFile: chain is leaf, ours, operator intermediate', { skip: OPENSSL_MISSING }, async t => {
  const dir = tempDir(t)
  const root = operatorCa(dir, 'Operator Root')
  const issuing = operatorCa(dir, 'Operator Issuing', { issuer: root })
  await t.rejects(openCa(t, { upstream: issuing }), {
    code: 'ERR_CA_UPSTREAM_INVALID', message: /is an intermediate \(issued by "O=Operator, CN=Operator Root"\); give upstream.bundleFile/
  }, 'an intermediate without bundleFile is refused')
  const ca = await openCa(t, { upstream: { ...issuing, bundleFile: root.certFile } })
  const svid = await ca.mintX509Svid({ spiffeId: workload })
  t.equal(svid.chain.length, 3)
  t.same(svid.chain[2], new X509Certificate(readFileSync(issuing.certFile)).raw, 'the operator intermediate ends the chain')
  checkVerifies(t, dir, svid.chain, ca)
})

void t.test('upstream – our intermediate never outlives the upstream certificate', async t => {
  const dir = tempDir(t)
  const root = operatorCa(dir, 'Short Root')
  const rootEnd = new Date(new X509Certificate(readFileSync(root.certFile)).validTo)
  const clock = new ManualClock(new Date(rootEnd.getTime() - 3600_000))
  const ca = await openCa(t, { upstream: root, clock: clock.read })
  t.same(ca.status().x509[0].notAfter, rootEnd, 'capped at the upstream NotAfter, not now + 24 h')
  const svid = await ca.mintX509Svid({ spiffeId: workload, ttlSeconds: 7200 })
  t.same(svid.expiresAt, rootEnd)
})

void t.test('upstream – unusable files are refused with ERR_CA_UPSTREAM_INVALID saying why', { skip: OPENSSL_MISSING }, async t => {
  const dir = tempDir(t)
  const root = operatorCa(dir, 'Root A')
  const other = operatorCa(dir, 'Root B')
  const leaf = operatorCa(dir, 'Not A CA', { ca: false })
  const garbage = join(dir, 'garbage.pem')
  writeFileSync(garbage, 'not a PEM file\n')
  const rootEnd = new Date(new X509Certificate(readFileSync(root.certFile)).validTo)
  const cases: Array<[string, Parameters<typeof openCa>[1], RegExp]> = [
    ['missing cert file', { upstream: { certFile: join(dir, 'nope.pem'), keyFile: root.keyFile } }, /certFile .*nope\.pem cannot be read \(ENOENT\)/],
    ['missing key file', { upstream: { certFile: root.certFile, keyFile: join(dir, 'nope.key') } }, /keyFile .*nope\.key cannot be read \(ENOENT\)/],
    ['cert file without certificates', { upstream: { certFile: garbage, keyFile: root.keyFile } }, /does not hold PEM certificates/],
    ['key file without a key', { upstream: { certFile: root.certFile, keyFile: garbage } }, /does not hold an unencrypted PEM private key/],
    ['key of another certificate', { upstream: { certFile: root.certFile, keyFile: other.keyFile } }, /the key in keyFile .*Root B\.key does not belong to the certificate/],
    ['not a CA', { upstream: leaf }, /"O=Operator, CN=Not A CA" .* is not a CA \(basicConstraints cA is not true\)/],
    ['bundle without its root', { upstream: { ...root, bundleFile: other.certFile } }, /does not chain to any root in .*Root B\.pem/],
    ['expired', { upstream: root, clock: () => new Date(rootEnd.getTime() + 1000) }, /expired at/]
  ]
  for (const [name, options, message] of cases) {
    await t.rejects(openCa(t, options), { code: 'ERR_CA_UPSTREAM_INVALID', message }, name)
  }
})

void t.test('upstream – a CA state made without an upstream is not silently switched to one (and back)', { skip: OPENSSL_MISSING }, async t => {
  const dataDir = tempDir(t)
  const root = operatorCa(tempDir(t), 'Operator Root')
  ;(await openCa(t, { dataDir })).close()
  await t.rejects(openCa(t, { dataDir, upstream: root }), { code: 'ERR_CA_STATE_MISMATCH', message: /made as a self-signed root, but is now configured as an intermediate of an upstream CA from files/ })
  const upstreamDir = tempDir(t)
  ;(await openCa(t, { dataDir: upstreamDir, upstream: root })).close()
  await t.rejects(openCa(t, { dataDir: upstreamDir }), { code: 'ERR_CA_STATE_MISMATCH', message: /made as an intermediate of an upstream CA from files \(ca.upstream\), but is now configured as a self-signed root/ })
  const other = operatorCa(tempDir(t), 'Other Root')
  await t.rejects(openCa(t, { dataDir: upstreamDir, upstream: other }), { code: 'ERR_CA_STATE_MISMATCH', message: /does not chain to the configured upstream roots/ })
})

void t.test('upstream – new upstream roots in bundleFile bump the bundle sequence', { skip: OPENSSL_MISSING }, async t => {
  const dir = tempDir(t)
  const dataDir = tempDir(t)
  const root = operatorCa(dir, 'Operator Root')
  const next = operatorCa(dir, 'Next Root')
  const first = await openCa(t, { dataDir, upstream: root })
  const sequence = first.bundle().sequence ?? 0
  first.close()
  const both = join(dir, 'both.pem')
  writeFileSync(both, readFileSync(root.certFile, 'utf8') + readFileSync(next.certFile, 'utf8'))
  const second = await openCa(t, { dataDir, upstream: { ...root, bundleFile: both } })
  t.equal(second.bundle().sequence, sequence + 1)
  t.equal(second.bundle().x509.size, 2)
  second.close()
  const third = await openCa(t, { dataDir, upstream: { ...root, bundleFile: both } })
  t.equal(third.bundle().sequence, sequence + 1, 'unchanged roots leave the sequence alone')
})
