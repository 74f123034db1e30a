/**
 * Bundles between SPIRE's API (spire.api.types.Bundle) and ours (SpiffeBundle): X.509 authorities as DER
 * certificates, JWT authorities as PKIX public keys with their key IDs. A bundle sent to the API becomes a SPIFFE
 * bundle document, which the store validates and keeps as it keeps one set with `chaperone bundle set`. Reading
 * follows SPIRE's server (api/bundle.go ProtoToBundle): the X.509 authorities first, then the JWT ones.
 *
 * What SPIRE keeps and we do not: a JWT authority's expiry and the `tainted` flags of federated bundles (a SPIFFE
 * bundle document has no place for them); they read back as 0 and false.
 */
import { X509Certificate, createPublicKey } from 'node:crypto'
import type { JsonWebKey, KeyObject } from 'node:crypto'
import type { SpiffeBundle } from '../../spiffe/spiffe-bundle'
import { SpireApiError } from './api-error'
import type { BundleMaskMessage, BundleMessage } from './messages'

const MASKABLE: ReadonlyArray<keyof BundleMaskMessage> = ['x509_authorities', 'jwt_authorities', 'refresh_hint', 'sequence_number']
const ZERO: Readonly<Omit<BundleMessage, 'trust_domain'>> = Object.freeze({ x509_authorities: [], jwt_authorities: [], refresh_hint: 0, sequence_number: 0 })

/** A bundle as SPIRE's API shows it; `jwtExpiry` gives a JWT authority's expiry (unix seconds) where it is known. */
export function bundleToMessage (bundle: SpiffeBundle, jwtExpiry: (kid: string) => number = () => 0): BundleMessage {
  return {
    trust_domain: bundle.trustDomain.name,
    x509_authorities: bundle.x509.authorities.map(cert => ({ asn1: cert.raw, tainted: false })),
    jwt_authorities: [...bundle.jwt.keys].map(([kid, jwk]) => ({
      public_key: createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' }).export({ type: 'spki', format: 'der' }),
      key_id: kid,
      expires_at: jwtExpiry(kid),
      tainted: false
    })),
    refresh_hint: bundle.refreshHintSeconds ?? 0,
    sequence_number: bundle.sequence ?? 0
  }
}

/** SPIRE's applyBundleMask: with a mask, every field it leaves out is zeroed (the trust domain always stays). */
export function maskBundle (message: BundleMessage, mask: BundleMaskMessage | null): BundleMessage {
  if (mask === null) return message
  return Object.assign({ ...message }, ...MASKABLE.filter(name => !mask[name]).map(name => ({ [name]: ZERO[name] }))) as BundleMessage
}

/** An update's bundle: the fields the input mask names from `message`, the others kept from `current` (no mask: all). */
export function mergeBundle (message: BundleMessage, mask: BundleMaskMessage | null, current: BundleMessage): BundleMessage {
  if (mask === null) return message
  return Object.assign({ ...current }, ...MASKABLE.filter(name => mask[name]).map(name => ({ [name]: message[name] }))) as BundleMessage
}

/**
 * A bundle sent to the API as a SPIFFE bundle document's text, for the store. Throws SpireApiError (INVALID_ARGUMENT)
 * with SPIRE's reason; the caller adds "failed to convert bundle".
 */
export function messageToDocument (message: BundleMessage): string {
  const x509Keys = message.x509_authorities.map(({ asn1 }) => {
    const cert = SpireApiError.within('unable to parse X.509 authority', () => parsed(() => new X509Certificate(asn1)))
    return { use: 'x509-svid', ...cert.publicKey.export({ format: 'jwk' }), x5c: [cert.raw.toString('base64')] }
  })
  const jwtKeys = message.jwt_authorities.map(({ public_key: der, key_id: kid }) => SpireApiError.within('unable to parse JWT authority', () => {
    const key: KeyObject = parsed(() => createPublicKey({ key: der, format: 'der', type: 'spki' }))
    if (kid === '') throw SpireApiError.invalid('missing key ID')
    return { use: 'jwt-svid', ...key.export({ format: 'jwk' }), kid }
  }))
  return JSON.stringify({
    keys: [...x509Keys, ...jwtKeys],
    ...message.sequence_number === 0 ? {} : { spiffe_sequence: message.sequence_number },
    ...message.refresh_hint === 0 ? {} : { spiffe_refresh_hint: message.refresh_hint }
  })
}

/** Runs a parse by Node's crypto; its failure becomes a SpireApiError with its reason. */
function parsed<T> (parse: () => T): T {
  try {
    return parse()
  } catch (err) {
    throw SpireApiError.invalid((err as Error).message)
  }
}
