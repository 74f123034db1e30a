/**
 * x509pop on the device's side, as SPIRE's server verifies it (SPIRE pkg/common/plugin/x509pop/x509pop.go): the
 * payload is the birth certificate chain; the answer to a challenge is a fresh 32-byte nonce and a signature over
 * SHA-256(challenge nonce ‖ our nonce), that digest signed AS the digest: ECDSA raw (r, s), RSA with PSS/SHA-256.
 */
import { createHash, randomBytes } from 'node:crypto'
import { signDigestEcdsa } from './ecdsa-digest-signature'
import type { NodeAttestor } from './node-attestor'
import { signDigestRsaPss } from './rsa-pss-digest-signature'
import type { BirthCredential } from './x509pop-credential'
import { encodeX509popPayload, encodeX509popResponse, parseX509popChallenge, X509POP_NONCE_BYTES } from './x509pop-messages'
import type { X509popSignature } from './x509pop-messages'

/** SPIRE's plugin name, AttestationData.type. */
export const X509POP = 'x509pop'

/** The x509pop node attestor for a checked birth credential (x509pop-credential.ts). */
export function x509popAttestor (credential: BirthCredential): NodeAttestor {
  return {
    type: X509POP,
    payload: () => encodeX509popPayload(credential.chain),
    respond: challenge => encodeX509popResponse(answerX509popChallenge(credential, challenge))
  }
}

/** The signature answering one challenge, before encoding. */
export function answerX509popChallenge (credential: BirthCredential, challenge: Buffer): X509popSignature {
  const { key } = credential
  const kind = key.asymmetricKeyType === 'rsa' ? 'rsa_signature' : 'ecdsa_signature'
  const challengeNonce = parseX509popChallenge(challenge, kind)
  const nonce = randomBytes(X509POP_NONCE_BYTES)
  const digest = createHash('sha256').update(challengeNonce).update(nonce).digest()
  return kind === 'rsa_signature'
    ? { kind, nonce, signature: signDigestRsaPss(key, digest) }
    : { kind, nonce, ...signDigestEcdsa(key, digest) }
}
