/**
 * A device's birth certificate for x509pop: the manufacturer-issued leaf (then its intermediates) and the leaf's
 * private key, checked to belong together and to be a key type SPIRE's x509pop signs with (EC on P-256/384/521, or
 * RSA). Also the names SPIRE will derive from it by default (SPIRE pkg/common/plugin/x509pop/x509pop.go): the SHA-1
 * fingerprint of the leaf's DER, and the agent ID `spiffe://<td>/spire/agent/x509pop/<fingerprint>`.
 */
import { createHash, createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { parseSpiffeId } from '../../spiffe/id'
import type { SpiffeId, TrustDomain } from '../../spiffe/id'
import { decodePem } from '../../spiffe/pem'
import { unsupportedEcdsaCurve } from './ecdsa-digest-signature'
import { UpstreamError } from './errors'

export interface BirthCredential {
  /** DER, the birth certificate first, then intermediates up to (not including) the manufacturer's root. */
  readonly chain: readonly Buffer[]
  readonly key: KeyObject
}

/** Checks that `chain` and `key` make a usable x509pop credential; returns it. */
export function birthCredential (chain: readonly Buffer[], key: KeyObject): BirthCredential {
  const fail = (reason: string): never => { throw new UpstreamError('ERR_X509POP_CREDENTIAL_INVALID', `birth certificate: ${reason}`) }
  if (chain.length === 0) fail('no certificate given')
  if (key.type !== 'private') fail(`a private key is needed, not a ${key.type} key`)
  let leaf: X509Certificate
  try {
    leaf = new X509Certificate(chain[0])
  } catch (err) {
    throw new UpstreamError('ERR_X509POP_CREDENTIAL_INVALID', `birth certificate: cannot be parsed (${(err as Error).message})`, { cause: err })
  }
  const type = key.asymmetricKeyType
  if (type !== 'ec' && type !== 'rsa') fail(`x509pop signs with EC or RSA keys, not ${type ?? 'unknown'}`)
  const curve = type === 'ec' ? unsupportedEcdsaCurve(key) : undefined
  if (curve !== undefined) fail(`EC curve ${curve} is not supported (P-256, P-384, P-521 are)`)
  if (!spki(createPublicKey(key)).equals(spki(leaf.publicKey))) fail(`the key does not belong to the certificate (subject ${leaf.subject.replace(/\n/g, ', ')})`)
  return { chain: [...chain], key }
}

/** Reads a PEM certificate chain (leaf first) and a PEM private key, as a device keeps them on disk. */
export function birthCredentialFromPem (chainPem: string, keyPem: string): BirthCredential {
  let chain: Buffer[]
  let key: KeyObject
  try {
    chain = decodePem(chainPem).filter(block => block.label === 'CERTIFICATE').map(block => block.der)
    key = createPrivateKey(keyPem)
  } catch (err) {
    throw new UpstreamError('ERR_X509POP_CREDENTIAL_INVALID', `birth certificate: unreadable PEM (${(err as Error).message})`, { cause: err })
  }
  return birthCredential(chain, key)
}

/** SPIRE's x509pop fingerprint: SHA-1 of the leaf's DER, lowercase hex. */
export function x509popFingerprint (credential: BirthCredential): string {
  return createHash('sha1').update(credential.chain[0]).digest('hex')
}

/** The agent ID SPIRE's x509pop gives this device by default (`agent_path_template` unset, mode external_pki). */
export function x509popAgentId (trustDomain: TrustDomain, credential: BirthCredential): SpiffeId {
  return parseSpiffeId(`spiffe://${trustDomain.name}/spire/agent/x509pop/${x509popFingerprint(credential)}`)
}

function spki (key: KeyObject): Buffer {
  return key.export({ type: 'spki', format: 'der' })
}
