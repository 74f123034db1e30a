/**
 * Accepting the device CA NewDownstreamX509CA returned, as SPIRE's downstream server checks its upstream's answer
 * before it signs with it: the first certificate is a CA (basicConstraints cA, keyUsage keyCertSign) for our key and
 * our trust domain (its one URI SAN is `spiffe://<td>`), and it chains through the returned chain to one of the
 * returned roots, valid now, every issuer allowed to have a CA below it. SPIRE caps the CA's NotAfter at its own
 * signing CA's (pkg/server/credtemplate/builder.go computeCappedLifetime); whether that happened is reported.
 */
import { createPublicKey } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import type { TrustDomain } from '../../spiffe/id'
import { X509Bundle } from '../../spiffe/x509-bundle'
import { describeCertificate, KeyUsage, parseCertificate } from '../../spiffe/x509-cert'
import { validatePath } from '../../spiffe/x509-path'
import { MAX_CHAIN_LENGTH } from '../../spiffe/x509-svid'
import { UpstreamError } from './errors'

/** NewDownstreamX509CAResponse as it arrives (proto-loader, keepCase). */
export interface DownstreamCaMessage {
  ca_cert_chain: Buffer[]
  x509_authorities: Buffer[]
}

/** The device's CA under the upstream: what its own CA signs with and publishes. */
export interface DeviceCa {
  /** DER: the device CA first, then the upstream's intermediates (never a root). */
  readonly chain: readonly Buffer[]
  /** Made for this CA; only ever in memory here. */
  readonly key: KeyObject
  /** DER: the trust domain's X.509 roots, as the upstream returned them. */
  readonly roots: readonly Buffer[]
  readonly notBefore: Date
  readonly notAfter: Date
  /** NotAfter of the certificate that signed the device CA, where SPIRE caps the device CA's. */
  readonly issuerNotAfter: Date
  /** Whether the device CA ends at issuerNotAfter: the lifetime asked for (or the upstream's ca_ttl) was cut there. */
  readonly capped: boolean
}

/** Checks `message` against our `key` and `trustDomain` at `now`; ERR_DEVICE_CA_INVALID names what is wrong. */
export function acceptDeviceCa (message: DownstreamCaMessage, key: KeyObject, trustDomain: TrustDomain, now = new Date()): DeviceCa {
  const { ca_cert_chain: chain, x509_authorities: roots } = message
  if (chain.length === 0) throw invalid('it has no certificate')
  if (chain.length > MAX_CHAIN_LENGTH) throw invalid(`its chain has ${chain.length} certificates; at most ${MAX_CHAIN_LENGTH} are accepted`)
  if (roots.length === 0) throw invalid('no X.509 root came with it')
  const [ca, ...intermediates] = chain.map((der, index) => parsed(() => parseCertificate(der), `certificate ${index} of the chain`))
  const rootBundle = parsed(() => new X509Bundle(trustDomain, roots), 'the returned roots')

  const name = describeCertificate(ca)
  if (ca.basicConstraints?.cA !== true) throw invalid(`${name} is not a CA (basicConstraints cA is not true)`)
  if (ca.keyUsage === undefined || (ca.keyUsage.mask & KeyUsage.keyCertSign) === 0) throw invalid(`${name} may not sign certificates (no keyUsage keyCertSign)`)
  if (!spki(ca.publicKey).equals(spki(createPublicKey(key)))) throw invalid(`${name} certifies another key than the one we sent`)
  const tdId = `spiffe://${trustDomain.name}`
  if (ca.uris.length !== 1 || ca.uris[0] !== tdId) throw invalid(`${name} is not for trust domain ${trustDomain.name} (URI SAN ${ca.uris.join(', ') || 'none'}, expected ${tdId})`)

  const path = parsed(() => validatePath(ca, intermediates, rootBundle, [], now), 'its chain to the returned roots')
  path.slice(1).forEach((issuer, index) => {
    // validatePath counts the CAs below an issuer without the leaf; here the leaf is our CA, so it counts too.
    const pathLen = issuer.basicConstraints?.pathLen
    if (pathLen !== undefined && pathLen < index + 1) throw invalid(`${describeCertificate(issuer)} allows ${pathLen} CA(s) below it; the device CA would be number ${index + 1}`)
  })
  const issuerNotAfter = path[1].notAfter
  return {
    chain: [...chain],
    key,
    roots: [...roots],
    notBefore: ca.notBefore,
    notAfter: ca.notAfter,
    issuerNotAfter,
    capped: ca.notAfter.getTime() >= issuerNotAfter.getTime()
  }
}

function invalid (why: string, cause?: unknown): UpstreamError {
  return new UpstreamError('ERR_DEVICE_CA_INVALID', `the device CA from NewDownstreamX509CA is refused: ${why}`, { cause })
}

/** Runs a parse or check whose error becomes ERR_DEVICE_CA_INVALID about `what`. */
function parsed<T> (work: () => T, what: string): T {
  try {
    return work()
  } catch (err) {
    throw invalid(`${what}: ${(err as Error).message}`, err)
  }
}

function spki (key: KeyObject): Buffer {
  return key.export({ type: 'spki', format: 'der' })
}
