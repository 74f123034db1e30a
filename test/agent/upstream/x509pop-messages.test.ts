/**
 * x509pop's JSON as SPIRE's Go code writes and reads it: the payload's certificates as standard base64 (Go's []byte),
 * the challenge's nonce exactly 32 bytes of strict base64, the kind matching the birth key; anything else refused
 * with ERR_X509POP_CHALLENGE_INVALID before a signature is made.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { TestManufacturer } from '../../../certs-test'
import { birthCredential, x509popAttestor } from '../../../agent/upstream'
import { encodeX509popPayload, encodeX509popResponse, parseX509popChallenge } from '../../../agent/upstream/x509pop-messages'
import { thrown } from '../../helpers/errors'

const maker = new TestManufacturer({ intermediate: true })

void t.test('x509pop payload – {"certificates":[leaf, intermediates…]} in Go\'s base64, no root', async t => {
  t.equal(encodeX509popPayload([Buffer.from([0xfb, 0xff]), Buffer.from('ab')]).toString(), '{"certificates":["+/8=","YWI="]}', 'standard alphabet, padded')
  const birth = maker.issueBirthCert('SN-PAYLOAD')
  const payload = JSON.parse(x509popAttestor(birthCredential(birth.chain, birth.key)).payload().toString()) as { certificates: string[] }
  t.same(payload.certificates.map(c => Buffer.from(c, 'base64')), birth.chain, 'the birth certificate, then the manufacturer\'s intermediate')
  t.equal(payload.certificates.length, 2, 'the manufacturer\'s root is not sent')
})

void t.test('x509pop challenge – the nonce of the kind the key asks for', async t => {
  const nonce = randomBytes(32)
  const challenge = Buffer.from(JSON.stringify({ rsa_signature: null, ecdsa_signature: { nonce: nonce.toString('base64') } }))
  t.same(parseX509popChallenge(challenge, 'ecdsa_signature'), nonce)
})

void t.test('x509pop challenge – refused when malformed, naming the reason', async t => {
  const withNonce = (nonce: unknown, kind = 'ecdsa_signature'): Buffer => Buffer.from(JSON.stringify({ [kind]: { nonce } }))
  const cases: Array<[string, Buffer, RegExp]> = [
    ['a 31-byte nonce', withNonce(randomBytes(31).toString('base64')), /nonce has 31 bytes; x509pop uses 32/],
    ['a 33-byte nonce', withNonce(randomBytes(33).toString('base64')), /nonce has 33 bytes/],
    ['an empty nonce', withNonce(''), /nonce has 0 bytes/],
    ['a nonce that is not base64', withNonce('!!!!' + randomBytes(30).toString('base64')), /not standard base64/],
    ['an unpadded nonce', withNonce(randomBytes(32).toString('base64').replace(/=+$/, '')), /not standard base64/],
    ['a URL-safe nonce', withNonce(Buffer.alloc(32, 0xfb).toString('base64url') + '='), /not standard base64/],
    ['a number for a nonce', withNonce(42), /not standard base64/],
    ['the RSA kind for an EC key', withNonce(randomBytes(32).toString('base64'), 'rsa_signature'), /no "ecdsa_signature"/],
    ['null for the kind', Buffer.from('{"ecdsa_signature":null}'), /no "ecdsa_signature"/],
    ['not JSON', Buffer.from('{"ecdsa_signature":'), /not JSON/],
    ['a JSON array', Buffer.from('[]'), /no "ecdsa_signature"/]
  ]
  for (const [what, challenge, reason] of cases) {
    t.match(thrown(() => parseX509popChallenge(challenge, 'ecdsa_signature')), { code: 'ERR_X509POP_CHALLENGE_INVALID', message: reason }, what)
  }
  const birth = maker.issueBirthCert('SN-SHORT')
  t.match(thrown(() => x509popAttestor(birthCredential(birth.chain, birth.key)).respond(withNonce(randomBytes(16).toString('base64')))),
    { code: 'ERR_X509POP_CHALLENGE_INVALID' }, 'the attestor signs nothing for a short nonce')
})

void t.test('x509pop response – the field SPIRE reads, the other null', async t => {
  const b = (s: string): Buffer => Buffer.from(s)
  t.equal(encodeX509popResponse({ kind: 'ecdsa_signature', nonce: b('n'), r: b('r'), s: b('s') }).toString(),
    '{"rsa_signature":null,"ecdsa_signature":{"nonce":"bg==","r":"cg==","s":"cw=="}}')
  t.equal(encodeX509popResponse({ kind: 'rsa_signature', nonce: b('n'), signature: b('sig') }).toString(),
    '{"rsa_signature":{"nonce":"bg==","signature":"c2ln"},"ecdsa_signature":null}')
})
