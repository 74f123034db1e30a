/**
 * SPIRE's VerifyChallengeResponse (pkg/common/plugin/x509pop/x509pop.go): the response must be of the kind the leaf's
 * key asks for, both nonces exactly 32 bytes (combineNonces), and its signature must verify over
 * SHA-256(challenge nonce ‖ response nonce) used as the digest: ECDSA (r, s) raw, RSA with PSS/SHA-256.
 */
import { createHash } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { X509POP_NONCE_BYTES } from '../upstream/x509pop-messages'
import type { X509popSignature, X509popSignatureKind } from '../upstream/x509pop-messages'
import { verifyDigestEcdsa } from './ecdsa-digest-verify'
import { verifyDigestRsaPss } from './rsa-pss-digest-verify'

/** Why `response` does not answer the challenge `challengeNonce` for the leaf key `key`, in SPIRE's words; undefined when it does. */
export function challengeResponseProblem (
  key: KeyObject, kind: X509popSignatureKind, challengeNonce: Buffer, response: X509popSignature | undefined
): string | undefined {
  if (response?.kind !== kind) return kind === 'rsa_signature' ? 'expecting RSA response' : 'expecting ECDSA response'
  if (challengeNonce.length !== X509POP_NONCE_BYTES) return 'invalid challenge nonce'
  if (response.nonce.length !== X509POP_NONCE_BYTES) return 'invalid response nonce'
  const digest = createHash('sha256').update(challengeNonce).update(response.nonce).digest()
  if (response.kind === 'rsa_signature') return verifyDigestRsaPss(key, digest, response.signature) ? undefined : 'RSA signature verify failed'
  return verifyDigestEcdsa(key, digest, response.r, response.s) ? undefined : 'ECDSA signature verify failed'
}
