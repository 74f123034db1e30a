/**
 * x509pop's challenge signature, checked as SPIRE's server checks it but by another implementation (the openssl
 * CLI's raw `pkeyutl -verify`, which never hashes its input): SHA-256(challenge nonce ‖ response nonce), computed
 * here from the JSON we send, verifies as the DIGEST under the birth certificate's key (ECDSA r/s; RSA-PSS/SHA-256).
 */
import t from 'tap'
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TestManufacturer } from '../../../certs-test'
import { birthCredential, x509popAttestor } from '../../../agent/upstream'
import { OPENSSL_MISSING, openssl } from '../../helpers/openssl'

const dir = mkdtempSync(join(tmpdir(), 'x509pop-sig-'))
t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })

/** A DER INTEGER of a big-endian unsigned value. */
function derInteger (value: Buffer): Buffer {
  const body = (value[0] & 0x80) === 0 ? value : Buffer.concat([Buffer.from([0]), value])
  return Buffer.concat([Buffer.from([0x02, body.length]), body])
}

/** ECDSA-Sig-Value (RFC 5480 §2.2 / SEC 1 C.5) of r and s, the form openssl reads. */
function ecdsaSigValue (r: Buffer, s: Buffer): Buffer {
  const body = Buffer.concat([derInteger(r), derInteger(s)])
  const length = body.length < 0x80 ? Buffer.from([body.length]) : Buffer.from([0x81, body.length])
  return Buffer.concat([Buffer.from([0x30]), length, body])
}

/** openssl's raw verification of `signature` over `digest` (never hashed) under `key`. */
function opensslVerifiesDigest (key: KeyObject, digest: Buffer, signature: Buffer, pss: boolean): { ok: boolean, output: string } {
  const keyFile = join(dir, 'key.pem')
  const sigFile = join(dir, 'sig.bin')
  writeFileSync(keyFile, key.export({ type: 'spki', format: 'pem' }))
  writeFileSync(sigFile, signature)
  const padding = pss ? ['-pkeyopt', 'rsa_padding_mode:pss', '-pkeyopt', 'digest:sha256', '-pkeyopt', 'rsa_pss_saltlen:auto'] : []
  return openssl(['pkeyutl', '-verify', '-pubin', '-inkey', keyFile, '-sigfile', sigFile, ...padding], digest)
}

const challengeFor = (kind: string, nonce: Buffer): Buffer => Buffer.from(JSON.stringify({ [kind]: { nonce: nonce.toString('base64') } }))
const decode = (b64: string): Buffer => Buffer.from(b64, 'base64')

void t.test('x509pop – an EC birth key signs SHA-256(challenge ‖ our nonce) as the digest, as Go\'s ecdsa.Verify checks', { skip: OPENSSL_MISSING }, async t => {
  const birth = new TestManufacturer().issueBirthCert('SN-1')
  const attestor = x509popAttestor(birthCredential(birth.chain, birth.key))
  for (let round = 0; round < 5; round++) {
    const challengeNonce = randomBytes(32)
    const response = JSON.parse(attestor.respond(challengeFor('ecdsa_signature', challengeNonce)).toString()) as {
      rsa_signature: null, ecdsa_signature: { nonce: string, r: string, s: string }
    }
    t.equal(response.rsa_signature, null, 'the other kind is null, as Go writes a nil pointer')
    const nonce = decode(response.ecdsa_signature.nonce)
    t.equal(nonce.length, 32, 'a 32-byte response nonce')
    const digest = createHash('sha256').update(challengeNonce).update(nonce).digest()
    const signature = ecdsaSigValue(decode(response.ecdsa_signature.r), decode(response.ecdsa_signature.s))
    const verified = opensslVerifiesDigest(birth.leaf.publicKey, digest, signature, false)
    t.ok(verified.ok, `openssl verifies r/s over the raw digest (${verified.output.trim()})`)
    const doubled = createHash('sha256').update(digest).digest()
    t.notOk(opensslVerifiesDigest(birth.leaf.publicKey, doubled, signature, false).ok, 'not over SHA-256 of the digest')
  }
})

void t.test('x509pop – P-384 and P-521 birth keys sign the digest too', { skip: OPENSSL_MISSING }, async t => {
  for (const namedCurve of ['P-384', 'P-521']) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve })
    const attestor = x509popAttestor({ chain: [], key: privateKey })
    const challengeNonce = randomBytes(32)
    const { ecdsa_signature: sig } = JSON.parse(attestor.respond(challengeFor('ecdsa_signature', challengeNonce)).toString()) as { ecdsa_signature: { nonce: string, r: string, s: string } }
    const digest = createHash('sha256').update(challengeNonce).update(decode(sig.nonce)).digest()
    t.ok(opensslVerifiesDigest(publicKey, digest, ecdsaSigValue(decode(sig.r), decode(sig.s)), false).ok, `${namedCurve}: openssl verifies`)
  }
})

void t.test('x509pop – an RSA birth key signs the digest with PSS/SHA-256, as Go\'s rsa.VerifyPSS checks', { skip: OPENSSL_MISSING }, async t => {
  const birth = new TestManufacturer().issueBirthCert('SN-2', { keyType: 'rsa-2048' })
  const attestor = x509popAttestor(birthCredential(birth.chain, birth.key))
  for (let round = 0; round < 3; round++) {
    const challengeNonce = randomBytes(32)
    const response = JSON.parse(attestor.respond(challengeFor('rsa_signature', challengeNonce)).toString()) as {
      rsa_signature: { nonce: string, signature: string }, ecdsa_signature: null
    }
    t.equal(response.ecdsa_signature, null, 'the other kind is null')
    const nonce = decode(response.rsa_signature.nonce)
    const digest = createHash('sha256').update(challengeNonce).update(nonce).digest()
    const signature = decode(response.rsa_signature.signature)
    t.equal(signature.length, 256, 'as long as the modulus')
    const verified = opensslVerifiesDigest(birth.leaf.publicKey, digest, signature, true)
    t.ok(verified.ok, `openssl verifies the PSS signature over the raw digest (${verified.output.trim()})`)
    t.notOk(opensslVerifiesDigest(birth.leaf.publicKey, createHash('sha256').update(digest).digest(), signature, true).ok, 'not over SHA-256 of the digest')
  }
})
