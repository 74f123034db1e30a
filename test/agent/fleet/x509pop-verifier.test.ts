/**
 * The server side of x509pop, as SPIRE's x509pop server plugin answers: a device's birth certificate proven with the
 * real device-side attestor (agent/upstream) gives SPIRE's agent ID and selectors; every refusal carries SPIRE's
 * message, its gRPC status and one stable code. The digest signatures are checked against OpenSSL's own signing too,
 * so the verifier is not only matched to our signer.
 */
import t from 'tap'
import type { Test } from 'tap'
import { constants, createHash, generateKeyPairSync, randomBytes, sign } from 'node:crypto'
import type { KeyObject, X509Certificate } from 'node:crypto'
import { status } from '@grpc/grpc-js'
import { TestManufacturer, buildCertificate, generateKeyPair, subjectKeyId } from '../../../certs-test'
import type { BirthCert, CertSpec, IssuerSpec } from '../../../certs-test'
import { answerX509popChallenge, x509popAttestor } from '../../../agent/upstream/x509pop-attestor'
import { birthCredential, x509popAgentId } from '../../../agent/upstream/x509pop-credential'
import type { BirthCredential } from '../../../agent/upstream/x509pop-credential'
import { signDigestEcdsa } from '../../../agent/upstream/ecdsa-digest-signature'
import { encodeX509popPayload, encodeX509popResponse } from '../../../agent/upstream/x509pop-messages'
import { X509popRefusal } from '../../../agent/fleet/errors'
import { X509popVerifier } from '../../../agent/fleet/x509pop-verifier'
import type { X509popResult, X509popVerifierOptions } from '../../../agent/fleet/x509pop-verifier'
import { verifyDigestEcdsa } from '../../../agent/fleet/ecdsa-digest-verify'
import { verifyDigestRsaPss } from '../../../agent/fleet/rsa-pss-digest-verify'
import { parseTrustDomain } from '../../../spiffe/id'
import { thrown } from '../../helpers/errors'

const td = parseTrustDomain('fleet.test')
const maker = new TestManufacturer()
const makerWithIntermediate = new TestManufacturer({ intermediate: true })
const DAY_MS = 24 * 3600_000

const verifierFor = (m: TestManufacturer, options: Partial<X509popVerifierOptions> = {}): X509popVerifier =>
  new X509popVerifier({ trustDomain: td, manufacturerRoots: [m.root.cert], ...options })
const credentialOf = (birth: BirthCert): BirthCredential => birthCredential(birth.chain, birth.key)
const sha1 = (der: Buffer): string => createHash('sha1').update(der).digest('hex')
/** The serial as SPIRE's SerialNumberHex writes it, from Node's reading (uppercase hex) rather than ours. */
const serialHex = (cert: X509Certificate): string => {
  const hex = cert.serialNumber.toLowerCase().replace(/^0+(?=.)/, '')
  return hex.length % 2 === 0 ? hex : `0${hex}`
}

/** The whole exchange with the real device side: payload, challenge, response. */
function attest (verifier: X509popVerifier, credential: BirthCredential): X509popResult {
  const attestor = x509popAttestor(credential)
  const { challenge, attestation } = verifier.begin(attestor.payload())
  return verifier.finish(attestation, attestor.respond(challenge))
}

/** The refusal `fn` throws, checked for its code, gRPC status and (exact, or matching) message. */
function refused (t: Test, fn: () => unknown, code: string, grpcCode: status, message: string | RegExp): void {
  const err = thrown(fn)
  t.ok(err instanceof X509popRefusal, `an X509popRefusal (${err.message})`)
  t.match(err, { code, grpcCode, message: typeof message === 'string' ? new RegExp(`^${escape(message)}$`) : message })
}
const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/** A device leaf signed by `issuer`, for what TestManufacturer does not make (other curves, key types, SANs, serials). */
function leafBy (issuer: IssuerSpec, publicKey: KeyObject, extra: Partial<CertSpec> = {}): Buffer {
  return buildCertificate({
    subject: { organization: 'Chaperone Test Devices', commonName: 'SN-CUSTOM' },
    issuer,
    publicKey,
    notBefore: new Date(Date.now() - 10_000),
    notAfter: new Date(Date.now() + DAY_MS),
    basicConstraints: { cA: false, critical: true },
    keyUsage: { usages: ['digitalSignature'], critical: true },
    ...extra
  })
}

void t.test('x509pop verifier – an EC P-256 device proves its birth certificate: SPIRE\'s agent ID and selectors', async t => {
  const birth = maker.issueBirthCert('SN-0001')
  const credential = credentialOf(birth)
  const verifier = verifierFor(maker)
  const { challenge } = verifier.begin(encodeX509popPayload(birth.chain))
  const sent = JSON.parse(challenge.toString()) as { rsa_signature: null, ecdsa_signature: { nonce: string } }
  t.equal(sent.rsa_signature, null, 'an ECDSA challenge for an EC key, the other kind null as Go writes it')
  t.equal(Buffer.from(sent.ecdsa_signature.nonce, 'base64').length, 32, 'a 32-byte nonce')
  const result = attest(verifier, credential)
  t.equal(result.agentId.toString(), x509popAgentId(td, credential).toString(), 'the ID the device side expects')
  t.equal(result.agentId.toString(), `spiffe://fleet.test/spire/agent/x509pop/${sha1(birth.chain[0])}`)
  t.same(result.selectors, [
    'x509pop:subject:cn:SN-0001',
    `x509pop:ca:fingerprint:${sha1(maker.root.certDer)}`,
    `x509pop:serialnumber:${serialHex(birth.leaf)}`
  ])
  t.equal(result.canReattest, true)
})

void t.test('x509pop verifier – through an intermediate, both CAs are ca:fingerprint selectors, intermediate first', async t => {
  const birth = makerWithIntermediate.issueBirthCert('SN-0002')
  t.equal(birth.chain.length, 2, 'the payload carries the intermediate')
  const result = attest(verifierFor(makerWithIntermediate), credentialOf(birth))
  t.same(result.selectors, [
    'x509pop:subject:cn:SN-0002',
    `x509pop:ca:fingerprint:${sha1(birth.chain[1])}`,
    `x509pop:ca:fingerprint:${sha1(makerWithIntermediate.root.certDer)}`,
    `x509pop:serialnumber:${serialHex(birth.leaf)}`
  ])
})

void t.test('x509pop verifier – RSA devices answer an rsa_signature challenge (PSS/SHA-256 over the digest)', async t => {
  for (const m of [maker, new TestManufacturer({ intermediate: true, keyType: 'rsa-2048' })]) {
    const birth = m.issueBirthCert('SN-RSA', { keyType: 'rsa-2048' })
    const { challenge } = verifierFor(m).begin(encodeX509popPayload(birth.chain))
    t.match(JSON.parse(challenge.toString()), { rsa_signature: { nonce: String }, ecdsa_signature: null })
    const result = attest(verifierFor(m), credentialOf(birth))
    t.equal(result.agentId.toString(), x509popAgentId(td, credentialOf(birth)).toString())
    t.equal(result.selectors.length, 2 + birth.chain.length, 'cn, one fingerprint per CA, serial')
  }
})

void t.test('x509pop verifier – P-384 and P-521 keys; serial and URI SAN selectors as SPIRE writes them', async t => {
  const uris = [
    'x509pop://fleet.test/datacenter/us-east-1',
    'X509POP://fleet.test/rack/r1/a', // Go's url.Parse lowercases the scheme; the value keeps its slash
    'x509pop://fleet.test/datacenter/eu-west-1?x=1', // the same key again: the later value wins (a Go map)
    'x509pop://other.test/zone/z', // another trust domain's
    'x509pop://fleet.test/novalue', // no value: skipped
    'spiffe://fleet.test/device'
  ]
  for (const namedCurve of ['P-384', 'P-521']) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve })
    const der = leafBy(maker.issuer.signer, publicKey, { uris, serial: Buffer.from([0x0a, 0xbc]) })
    const result = attest(verifierFor(maker), birthCredential([der], privateKey))
    t.same(result.selectors, [
      'x509pop:subject:cn:SN-CUSTOM',
      `x509pop:ca:fingerprint:${sha1(maker.root.certDer)}`,
      'x509pop:serialnumber:0abc', // Go's %x is "abc"; SPIRE pads it to an even length
      'x509pop:san:datacenter:eu-west-1',
      'x509pop:san:rack:r1/a'
    ], namedCurve)
  }
})

void t.test('x509pop verifier – the payload is read as Go\'s json.Unmarshal reads it', async t => {
  const birth = maker.issueBirthCert('SN-GO-JSON')
  const leaf = birth.chain[0].toString('base64')
  const wrapped = `${leaf.slice(0, 40)}\\n${leaf.slice(40)}` // a JSON "\\n": Go's base64 decoder skips line breaks
  for (const payload of [`{"CERTIFICATES":["${leaf}"]}`, `{"certificates":["${wrapped}"]}`, `{"certificates":[${JSON.stringify([...birth.chain[0]])}]}`]) {
    t.doesNotThrow(() => verifierFor(maker).begin(Buffer.from(payload)), payload.slice(0, 40))
  }
})

void t.test('x509pop verifier – refuses a malformed payload: InvalidArgument, SPIRE\'s words', async t => {
  const verifier = verifierFor(maker)
  const invalid = (payload: string, message: string | RegExp): void =>
    refused(t, () => verifier.begin(Buffer.from(payload)), 'ERR_X509POP_PAYLOAD_INVALID', status.INVALID_ARGUMENT, message)
  invalid('', 'missing attestation payload')
  invalid('not json', /^failed to unmarshal data: Unexpected token/)
  invalid('[]', 'failed to unmarshal data: json: cannot unmarshal array into Go value of type x509pop.AttestationData')
  invalid('{"certificates":"AQID"}', 'failed to unmarshal data: json: cannot unmarshal string into Go struct field AttestationData.certificates of type [][]uint8')
  invalid('{"certificates":["AQI"]}', /^failed to unmarshal data: illegal base64 data/)
  invalid('{}', 'no certificate to attest')
  invalid('{"certificates":null}', 'no certificate to attest')
  invalid('{"certificates":["AQID"]}', /^unable to parse leaf certificate: x509: malformed certificate/)
  const leaf = maker.issueBirthCert('SN-JUNK').chain[0].toString('base64')
  invalid(`{"certificates":["${leaf}",null]}`, /^unable to parse intermediate certificate 0: x509: malformed certificate/)
})

void t.test('x509pop verifier – refuses more intermediates than max_intermediates (4), before parsing them', async t => {
  const birth = makerWithIntermediate.issueBirthCert('SN-MANY')
  const withIntermediates = (n: number): Buffer => encodeX509popPayload([birth.chain[0], ...Array<Buffer>(n).fill(birth.chain[1])])
  t.doesNotThrow(() => verifierFor(makerWithIntermediate).begin(withIntermediates(4)), 'four are allowed')
  refused(t, () => verifierFor(makerWithIntermediate).begin(withIntermediates(5)), 'ERR_X509POP_PAYLOAD_INVALID', status.INVALID_ARGUMENT, 'too many intermediate certificates')
  refused(t, () => verifierFor(makerWithIntermediate, { maxIntermediates: 1 }).begin(withIntermediates(2)), 'ERR_X509POP_PAYLOAD_INVALID', status.INVALID_ARGUMENT, 'too many intermediate certificates')
})

void t.test('x509pop verifier – refuses RSA keys over max_rsa_key_size, the leaf\'s and the intermediates\'', async t => {
  const rsaLeaf = maker.issueBirthCert('SN-BIG', { keyType: 'rsa-2048' })
  t.doesNotThrow(() => verifierFor(maker, { maxRsaKeyBits: 2048 }).begin(encodeX509popPayload(rsaLeaf.chain)), 'at the limit')
  refused(t, () => verifierFor(maker, { maxRsaKeyBits: 2047 }).begin(encodeX509popPayload(rsaLeaf.chain)),
    'ERR_X509POP_PAYLOAD_INVALID', status.INVALID_ARGUMENT, 'leaf certificate key size too large')
  const rsaMaker = new TestManufacturer({ intermediate: true, keyType: 'rsa-2048' })
  const viaRsa = rsaMaker.issueBirthCert('SN-EC-UNDER-RSA')
  refused(t, () => verifierFor(rsaMaker, { maxRsaKeyBits: 2047 }).begin(encodeX509popPayload(viaRsa.chain)),
    'ERR_X509POP_PAYLOAD_INVALID', status.INVALID_ARGUMENT, 'intermediate certificate 0 key size too large')
})

void t.test('x509pop verifier – refuses chains that do not verify to a manufacturer root: PermissionDenied', async t => {
  const untrusted = (verifier: X509popVerifier, chain: Buffer[], message: string): void =>
    refused(t, () => verifier.begin(encodeX509popPayload(chain)), 'ERR_X509POP_CERT_UNTRUSTED', status.PERMISSION_DENIED, `certificate verification failed: ${message}`)
  untrusted(verifierFor(maker), new TestManufacturer({ name: 'Other Devices' }).issueBirthCert('SN-OTHER').chain, 'x509: certificate signed by unknown authority')
  // Another manufacturer's root under the same name: Go tries it and says why it did not fit.
  untrusted(verifierFor(maker), new TestManufacturer().issueBirthCert('SN-IMPOSTOR').chain,
    'x509: certificate signed by unknown authority (possibly because of "x509: ECDSA verification failure" while trying to verify candidate authority certificate "Chaperone Test Devices Root CA")')
  untrusted(verifierFor(makerWithIntermediate), [makerWithIntermediate.issueBirthCert('SN-NO-INTERMEDIATE').chain[0]], 'x509: certificate signed by unknown authority')

  const now = new Date()
  const expired = maker.issueBirthCert('SN-EXPIRED', { expired: true })
  untrusted(verifierFor(maker, { clock: () => now }), expired.chain,
    `x509: certificate has expired or is not yet valid: current time ${rfc3339(now)} is after ${rfc3339(new Date(expired.leaf.validTo))}`)
  const yesterday = new Date(now.getTime() - DAY_MS)
  const fresh = maker.issueBirthCert('SN-FUTURE')
  untrusted(verifierFor(maker, { clock: () => yesterday }), fresh.chain,
    `x509: certificate has expired or is not yet valid: current time ${rfc3339(yesterday)} is before ${rfc3339(new Date(fresh.leaf.validFrom))}`)
})

void t.test('x509pop verifier – an issuer must be a CA allowed to sign certificates, as Go\'s Verify checks', async t => {
  const cannotSign = JSON.stringify('x509: invalid signature: parent certificate cannot sign this kind of certificate')
  const unknownAuthority = `x509: certificate signed by unknown authority (possibly because of ${cannotSign} while trying to verify candidate authority certificate "Issuer")`
  const cases: Array<[string, Partial<CertSpec>, string]> = [
    ['not a CA (basicConstraints cA false)', { basicConstraints: { cA: false, critical: true } }, unknownAuthority],
    ['a CA without keyCertSign', { keyUsage: { usages: ['digitalSignature'], critical: true } }, unknownAuthority],
    ['a v3 certificate without basicConstraints', { basicConstraints: undefined }, unknownAuthority],
    ['a CA with an unknown critical extension', { extraExtension: { oid: '1.3.6.1.4.1.99999.1', critical: true, value: Buffer.from([0x05, 0x00]) } },
      'x509: unhandled critical extension'],
    ['a CA whose pathLenConstraint 0 forbids the CA below it', { basicConstraints: { cA: true, pathLen: 0, critical: true } },
      'x509: too many intermediates for path length constraint']
  ]
  for (const [name, defect, message] of cases) {
    const issuer = caBelow(maker.root.signer, 'Issuer', defect)
    // pathLen needs a CA below the issuer; otherwise the leaf is right below it.
    const sub = name.includes('pathLen') ? caBelow(issuer.signer, 'Sub CA', {}) : undefined
    const leaf = leafBy((sub ?? issuer).signer, generateKeyPair().publicKey)
    const chain = sub === undefined ? [leaf, issuer.der] : [leaf, sub.der, issuer.der]
    refused(t, () => verifierFor(maker).begin(encodeX509popPayload(chain)), 'ERR_X509POP_CERT_UNTRUSTED', status.PERMISSION_DENIED, `certificate verification failed: ${message}`)
  }
  const sound = caBelow(maker.root.signer, 'Issuer', {})
  const below = caBelow(sound.signer, 'Sub CA', {})
  t.doesNotThrow(() => verifierFor(maker).begin(encodeX509popPayload([leafBy(below.signer, generateKeyPair().publicKey), below.der, sound.der])), 'the same chain with sound CAs verifies')
})

/** A CA certificate signed by `issuer`, with `defect` applied, and how to sign below it. */
function caBelow (issuer: IssuerSpec, commonName: string, defect: Partial<CertSpec>): { der: Buffer, signer: IssuerSpec } {
  const { privateKey, publicKey } = generateKeyPair()
  const der = buildCertificate({
    subject: { commonName },
    issuer,
    publicKey,
    notBefore: new Date(Date.now() - 10_000),
    notAfter: new Date(Date.now() + DAY_MS),
    basicConstraints: { cA: true, critical: true },
    keyUsage: { usages: ['keyCertSign', 'cRLSign'], critical: true },
    ...defect
  })
  return { der, signer: { name: { commonName }, key: privateKey, keyId: subjectKeyId(publicKey) } }
}

void t.test('x509pop verifier – a trusted certificate that cannot prove possession: Internal, as SPIRE answers', async t => {
  const noSigning = maker.issueBirthCert('SN-NO-DS', { withoutDigitalSignature: true })
  refused(t, () => verifierFor(maker).begin(encodeX509popPayload(noSigning.chain)), 'ERR_X509POP_CERT_UNUSABLE', status.INTERNAL,
    'unable to generate challenge: certificate not intended for digital signature use')
  const ed25519 = leafBy(maker.issuer.signer, generateKeyPairSync('ed25519').publicKey)
  refused(t, () => verifierFor(maker).begin(encodeX509popPayload([ed25519])), 'ERR_X509POP_CERT_UNUSABLE', status.INTERNAL,
    'unable to generate challenge: unsupported public key type ed25519.PublicKey')
})

void t.test('x509pop verifier – refuses a response that does not prove the key: PermissionDenied', async t => {
  const proofFailed = (message: string): [string, status, string] => ['ERR_X509POP_PROOF_FAILED', status.PERMISSION_DENIED, `challenge response verification failed: ${message}`]
  for (const keyType of ['ec-p256', 'rsa-2048'] as const) {
    const kindName = keyType === 'rsa-2048' ? 'RSA' : 'ECDSA'
    const birth = maker.issueBirthCert(`SN-PROOF-${kindName}`, { keyType })
    const verifier = verifierFor(maker)
    const payload = encodeX509popPayload(birth.chain)

    const { challenge, attestation } = verifier.begin(payload)
    const impostor = { chain: birth.chain, key: generateKeyPair(keyType).privateKey }
    refused(t, () => verifier.finish(attestation, x509popAttestor(impostor).respond(challenge)), ...proofFailed(`${kindName} signature verify failed`))

    const first = verifier.begin(payload)
    const second = verifier.begin(payload)
    const answerToFirst = x509popAttestor(credentialOf(birth)).respond(first.challenge)
    refused(t, () => verifier.finish(second.attestation, answerToFirst), ...proofFailed(`${kindName} signature verify failed`))
    t.doesNotThrow(() => verifier.finish(first.attestation, answerToFirst), 'the answer fits its own challenge')
  }
})

void t.test('x509pop verifier – the responder\'s nonce must be exactly 32 bytes', async t => {
  const birth = maker.issueBirthCert('SN-NONCE')
  const verifier = verifierFor(maker)
  /** A response signed correctly over SHA-256(challenge nonce ‖ a nonce of `length` bytes). */
  const respond = (challenge: Buffer, length: number): Buffer => {
    const challengeNonce = Buffer.from((JSON.parse(challenge.toString()) as { ecdsa_signature: { nonce: string } }).ecdsa_signature.nonce, 'base64')
    const nonce = randomBytes(length)
    const digest = createHash('sha256').update(challengeNonce).update(nonce).digest()
    return encodeX509popResponse({ kind: 'ecdsa_signature', nonce, ...signDigestEcdsa(birth.key, digest) })
  }
  const good = verifier.begin(encodeX509popPayload(birth.chain))
  t.doesNotThrow(() => verifier.finish(good.attestation, respond(good.challenge, 32)), 'the crafted answer is right with 32 bytes')
  for (const length of [31, 33]) {
    const { challenge, attestation } = verifier.begin(encodeX509popPayload(birth.chain))
    refused(t, () => verifier.finish(attestation, respond(challenge, length)), 'ERR_X509POP_PROOF_FAILED', status.PERMISSION_DENIED,
      'challenge response verification failed: invalid response nonce')
  }
})

void t.test('x509pop verifier – the response must be of the kind the leaf key asks for, and Go\'s JSON', async t => {
  const ec = maker.issueBirthCert('SN-KIND-EC')
  const rsa = maker.issueBirthCert('SN-KIND-RSA', { keyType: 'rsa-2048' })
  const verifier = verifierFor(maker)
  // Each device answers the other kind: a correct signature of its own key type, under the wrong field.
  for (const [birth, expecting, otherKind] of [[ec, 'ECDSA', 'rsa_signature'], [rsa, 'RSA', 'ecdsa_signature']] as const) {
    const { attestation } = verifier.begin(encodeX509popPayload(birth.chain))
    const nonce = randomBytes(32).toString('base64')
    const otherChallenge = Buffer.from(JSON.stringify({ [otherKind]: { nonce } }))
    const other = birth === ec ? rsa : ec
    const answer = encodeX509popResponse(answerX509popChallenge(credentialOf(other), otherChallenge))
    refused(t, () => verifier.finish(attestation, answer), 'ERR_X509POP_PROOF_FAILED', status.PERMISSION_DENIED,
      `challenge response verification failed: expecting ${expecting} response`)
  }
  const { attestation } = verifier.begin(encodeX509popPayload(ec.chain))
  refused(t, () => verifier.finish(attestation, Buffer.from('{')), 'ERR_X509POP_RESPONSE_INVALID', status.INVALID_ARGUMENT, /^unable to unmarshal challenge response: /)
  refused(t, () => verifier.finish(attestation, Buffer.from('{"ecdsa_signature":{"nonce":true}}')), 'ERR_X509POP_RESPONSE_INVALID', status.INVALID_ARGUMENT,
    'unable to unmarshal challenge response: json: cannot unmarshal bool into Go struct field ECDSASignatureResponse.nonce of type []uint8')
})

void t.test('digest signatures – OpenSSL\'s own ECDSA and PSS signatures over SHA-256(m) verify as signatures of that digest', async t => {
  for (const namedCurve of ['P-224', 'P-256', 'P-384', 'P-521']) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve })
    const message = randomBytes(64)
    const signature = sign('sha256', message, { key: privateKey, dsaEncoding: 'ieee-p1363' })
    const [r, s] = [signature.subarray(0, signature.length / 2), signature.subarray(signature.length / 2)]
    const digest = createHash('sha256').update(message).digest()
    t.ok(verifyDigestEcdsa(publicKey, digest, r, s), `${namedCurve}: verifies`)
    t.notOk(verifyDigestEcdsa(publicKey, createHash('sha256').update(digest).digest(), r, s), `${namedCurve}: not over another digest`)
    t.notOk(verifyDigestEcdsa(publicKey, digest, s, r), `${namedCurve}: not with r and s swapped`)
  }
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2049 })
  for (const saltLength of [0, 20, 32, 64]) {
    const message = randomBytes(64)
    const signature = sign('sha256', message, { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength })
    const digest = createHash('sha256').update(message).digest()
    t.ok(verifyDigestRsaPss(publicKey, digest, signature), `PSS, salt ${saltLength}: verifies (salt length detected, as Go does)`)
    t.notOk(verifyDigestRsaPss(publicKey, createHash('sha256').update(digest).digest(), signature), `PSS, salt ${saltLength}: not over another digest`)
  }
})

/** Go's time.RFC3339 in UTC. */
function rfc3339 (date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z')
}
