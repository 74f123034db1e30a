/**
 * The server side of SPIRE's x509pop node attestation, for devices (Chaperone agents, unmodified SPIRE agents) that
 * attest to this agent as they would to a SPIRE server: SPIRE's checks in SPIRE's order, its messages and gRPC
 * codes (pkg/server/plugin/nodeattestor/x509pop/x509pop.go Attest, mode `external_pki`, default agent path).
 *   begin   the payload's chain: at most `maxIntermediates` intermediates, RSA keys within `maxRsaKeyBits`, verified
 *           to a manufacturer root at clock() (x509pop-chain.ts); a leaf usable for signatures → a 32-byte challenge
 *   finish  the response signs SHA-256(challenge nonce ‖ its nonce) with the leaf's key → agent ID and selectors
 * Not supported: `mode = "spiffe"`, `verify_client_ip`, a custom `agent_path_template`.
 */
import { randomBytes, X509Certificate } from 'node:crypto'
import { status } from '@grpc/grpc-js'
import type { SpiffeId, TrustDomain } from '../../spiffe/id'
import { KeyUsage } from '../../spiffe/x509-cert'
import { encodeX509popChallenge, parseX509popPayload, parseX509popResponse, X509POP_NONCE_BYTES } from '../upstream/x509pop-messages'
import type { X509popSignatureKind } from '../upstream/x509pop-messages'
import { X509popRefusal } from './errors'
import type { FleetErrorCode } from './errors'
import { readPopCertificate } from './x509pop-certificate'
import type { PopCertificate } from './x509pop-certificate'
import { verifyPopChains } from './x509pop-chain'
import { x509popAgentIdOf, x509popSelectors } from './x509pop-selectors'
import { challengeResponseProblem } from './x509pop-verify-signature'

export interface X509popVerifierOptions {
  /** The trust domain agent IDs are made in, and whose `x509pop://<td>/…` URI SANs become san selectors. */
  trustDomain: TrustDomain
  /** The manufacturers' roots (SPIRE's `ca_bundle_path(s)`): certificates or DER. */
  manufacturerRoots: ReadonlyArray<X509Certificate | Buffer>
  /** SPIRE's `max_intermediates`, 4 by default. */
  maxIntermediates?: number
  /** SPIRE's `max_rsa_key_size`, 8192 by default: for the leaf and the intermediates sent. */
  maxRsaKeyBits?: number
  /** The time certificates must be valid at; now by default. */
  clock?: () => Date
}

/** A verified birth certificate awaiting the answer to its challenge. */
export interface PendingX509pop {
  readonly leaf: PopCertificate
  readonly chains: readonly PopCertificate[][]
  readonly kind: X509popSignatureKind
  readonly nonce: Buffer
}

/** SPIRE's AgentAttributes for an attested device. */
export interface X509popResult {
  readonly agentId: SpiffeId
  /** `x509pop:<value>`, in SPIRE's order. */
  readonly selectors: string[]
  readonly canReattest: true
}

const GO_KEY_TYPES: Readonly<Record<string, string>> = { ed25519: 'ed25519.PublicKey', dsa: '*dsa.PublicKey' }

export class X509popVerifier {
  readonly #trustDomain: TrustDomain
  readonly #roots: PopCertificate[]
  readonly #maxIntermediates: number
  readonly #maxRsaKeyBits: number
  readonly #clock: () => Date

  constructor (options: X509popVerifierOptions) {
    const { maxIntermediates = 4, maxRsaKeyBits = 8192 } = options
    // SPIRE's configuration errors (buildConfig).
    if (options.manufacturerRoots.length === 0) throw new RangeError('x509pop needs at least one manufacturer root')
    if (!(maxIntermediates > 0)) throw new RangeError('max_intermediates must be greater than 0')
    if (!(maxRsaKeyBits > 0)) throw new RangeError('max_rsa_key_size must be greater than 0')
    this.#trustDomain = options.trustDomain
    this.#roots = options.manufacturerRoots.map((root, i) => {
      try {
        return readPopCertificate(root instanceof X509Certificate ? root.raw : root)
      } catch (err) {
        throw new RangeError(`manufacturer root ${i}: ${(err as Error).message}`, { cause: err })
      }
    })
    this.#maxIntermediates = maxIntermediates
    this.#maxRsaKeyBits = maxRsaKeyBits
    this.#clock = options.clock ?? (() => new Date())
  }

  /** Checks the payload's chain and makes the challenge; throws X509popRefusal. */
  begin (payload: Buffer): { challenge: Buffer, attestation: PendingX509pop } {
    const invalid = (message: string, cause?: unknown): X509popRefusal => refusal('ERR_X509POP_PAYLOAD_INVALID', status.INVALID_ARGUMENT, message, cause)
    if (payload.length === 0) throw invalid('missing attestation payload')
    const ders = parseX509popPayload(payload, reason => invalid(`failed to unmarshal data: ${reason}`))
    if (ders.length === 0) throw invalid('no certificate to attest')
    // Counted before anything is parsed, as SPIRE does, to bound the work one payload can cause.
    if (ders.length - 1 > this.#maxIntermediates) throw invalid('too many intermediate certificates')
    const [leaf, ...intermediates] = ders.map((der, i) => {
      const role = i === 0 ? 'leaf certificate' : `intermediate certificate ${i - 1}`
      let cert: PopCertificate
      try {
        cert = readPopCertificate(der)
      } catch (err) {
        throw invalid(`unable to parse ${role}: ${(err as Error).message}`, err)
      }
      const bits = cert.keyType === 'rsa' ? cert.parsed.publicKey.asymmetricKeyDetails?.modulusLength ?? 0 : 0
      if (bits > this.#maxRsaKeyBits) throw invalid(`${role} key size too large`)
      return cert
    })
    let chains: PopCertificate[][]
    try {
      chains = verifyPopChains(leaf, intermediates, this.#roots, this.#clock())
    } catch (err) {
      throw refusal('ERR_X509POP_CERT_UNTRUSTED', status.PERMISSION_DENIED, `certificate verification failed: ${(err as Error).message}`, err)
    }
    const kind = challengeKind(leaf)
    const nonce = randomBytes(X509POP_NONCE_BYTES)
    return { challenge: encodeX509popChallenge(kind, nonce), attestation: { leaf, chains, kind, nonce } }
  }

  /** Verifies the answer to `pending`'s challenge; throws X509popRefusal. */
  finish (pending: PendingX509pop, response: Buffer): X509popResult {
    const signature = parseX509popResponse(response, pending.kind, reason =>
      refusal('ERR_X509POP_RESPONSE_INVALID', status.INVALID_ARGUMENT, `unable to unmarshal challenge response: ${reason}`))
    const problem = challengeResponseProblem(pending.leaf.parsed.publicKey, pending.kind, pending.nonce, signature)
    if (problem !== undefined) throw refusal('ERR_X509POP_PROOF_FAILED', status.PERMISSION_DENIED, `challenge response verification failed: ${problem}`)
    return {
      agentId: x509popAgentIdOf(this.#trustDomain, pending.leaf),
      selectors: x509popSelectors(this.#trustDomain, pending.leaf, pending.chains),
      canReattest: true
    }
  }
}

/** GenerateChallenge: the key must be meant for signatures, and RSA or ECDSA; the challenge follows its type. */
function challengeKind (leaf: PopCertificate): X509popSignatureKind {
  const unusable = (reason: string): X509popRefusal =>
    refusal('ERR_X509POP_CERT_UNUSABLE', status.INTERNAL, `unable to generate challenge: ${reason}`)
  // Go reads an absent keyUsage as no usage at all.
  if (((leaf.parsed.keyUsage?.mask ?? 0) & KeyUsage.digitalSignature) === 0) throw unusable('certificate not intended for digital signature use')
  if (leaf.keyType === 'rsa') return 'rsa_signature'
  if (leaf.keyType === 'ecdsa') return 'ecdsa_signature'
  throw unusable(`unsupported public key type ${GO_KEY_TYPES[leaf.keyType ?? ''] ?? '<nil>'}`)
}

function refusal (code: FleetErrorCode, grpcCode: status, message: string, cause?: unknown): X509popRefusal {
  return new X509popRefusal(code, grpcCode, message, cause === undefined ? undefined : { cause })
}
