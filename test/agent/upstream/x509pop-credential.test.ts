/**
 * A birth credential: the certificate and its key must belong together and be a kind x509pop signs with; the agent
 * ID SPIRE will give is spiffe://<td>/spire/agent/x509pop/<SHA-1 of the birth certificate's DER>.
 */
import t from 'tap'
import { createHash, generateKeyPairSync } from 'node:crypto'
import { TestManufacturer, generateKeyPair } from '../../../certs-test'
import { birthCredential, birthCredentialFromPem, x509popAgentId, x509popFingerprint } from '../../../agent/upstream'
import { parseTrustDomain } from '../../../spiffe/id'
import { thrown } from '../../helpers/errors'

const maker = new TestManufacturer()

void t.test('birth credential – read from PEM, as a device keeps it', async t => {
  const birth = maker.issueBirthCert('SN-PEM', { keyType: 'rsa-2048' })
  const credential = birthCredentialFromPem(birth.chainPem, birth.keyPem)
  t.same(credential.chain, birth.chain)
  t.equal(credential.key.asymmetricKeyType, 'rsa')
  t.match(thrown(() => birthCredentialFromPem(birth.chainPem, 'not a key')), { code: 'ERR_X509POP_CREDENTIAL_INVALID', message: /unreadable PEM/ })
  t.match(thrown(() => birthCredentialFromPem('', birth.keyPem)), { code: 'ERR_X509POP_CREDENTIAL_INVALID', message: /no certificate/ })
})

void t.test('birth credential – refused when the key is not the certificate\'s, or not usable', async t => {
  const birth = maker.issueBirthCert('SN-KEY')
  t.match(thrown(() => birthCredential(birth.chain, generateKeyPair().privateKey)), { code: 'ERR_X509POP_CREDENTIAL_INVALID', message: /does not belong to the certificate.*CN=SN-KEY/ })
  t.match(thrown(() => birthCredential(birth.chain, birth.leaf.publicKey)), { code: 'ERR_X509POP_CREDENTIAL_INVALID', message: /a private key is needed/ })
  t.match(thrown(() => birthCredential(birth.chain, generateKeyPairSync('ed25519').privateKey)), { code: 'ERR_X509POP_CREDENTIAL_INVALID', message: /EC or RSA keys, not ed25519/ })
  t.match(thrown(() => birthCredential(birth.chain, generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey)), { code: 'ERR_X509POP_CREDENTIAL_INVALID', message: /curve secp256k1 is not supported/ })
  t.match(thrown(() => birthCredential([Buffer.from('junk')], birth.key)), { code: 'ERR_X509POP_CREDENTIAL_INVALID', message: /cannot be parsed/ })
})

void t.test('birth credential – the agent ID SPIRE assigns by default', async t => {
  const birth = maker.issueBirthCert('SN-ID')
  const credential = birthCredential(birth.chain, birth.key)
  const sha1 = createHash('sha1').update(birth.chain[0]).digest('hex')
  t.equal(x509popFingerprint(credential), sha1)
  t.equal(x509popAgentId(parseTrustDomain('fleet.example'), credential).toString(), `spiffe://fleet.example/spire/agent/x509pop/${sha1}`)
})
