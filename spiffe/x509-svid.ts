/**
 * X509-SVID verification (standards/X509-SVID.md §5): the peer is known only by a chain that validates to the
 * bundle of the trust domain its own SPIFFE ID names, and by a leaf that obeys every X509-SVID rule.
 */
import type { X509Certificate } from 'node:crypto'
import { X509SvidError } from './errors'
import type { SpiffeId } from './id'
import type { X509BundleSource } from './bundle-source'
import { parseCertificateCached } from './x509-cert-cache'
import type { ParsedCertificate } from './x509-cert'
import { checkLeafExtensions, spiffeIdOfLeaf } from './x509-svid-leaf'
import { validatePath } from './x509-path'

/** Longer chains are refused before any signature work, so a hostile peer cannot make us verify hundreds. */
export const MAX_CHAIN_LENGTH = 16

export interface VerifyX509SvidOptions {
  /** The time to validate at; defaults to now. */
  readonly now?: Date
}

export interface VerifiedX509Svid {
  readonly id: SpiffeId
  /** Leaf first, ending with the trust domain's authority. */
  readonly verifiedChain: X509Certificate[]
}

/**
 * Verifies a peer's certificate chain (leaf first, DER or X509Certificate) and returns its SPIFFE ID.
 * Throws X509SvidError whose `code` names the defect.
 */
export function verifyX509Svid (chain: ReadonlyArray<Uint8Array | X509Certificate>, bundles: X509BundleSource, options: VerifyX509SvidOptions = {}): SpiffeId {
  return verifyX509SvidChain(chain, bundles, options).id
}

/** As verifyX509Svid, also returning the verified path. */
export function verifyX509SvidChain (chain: ReadonlyArray<Uint8Array | X509Certificate>, bundles: X509BundleSource, options: VerifyX509SvidOptions = {}): VerifiedX509Svid {
  if (chain.length === 0) throw new X509SvidError('ERR_X509_SVID_MISSING', 'the peer presented no certificate')
  if (chain.length > MAX_CHAIN_LENGTH) {
    throw new X509SvidError('ERR_X509_SVID_MALFORMED', `the chain has ${chain.length} certificates; at most ${MAX_CHAIN_LENGTH} are accepted`)
  }
  const [leaf, ...intermediates] = chain.map(parseChainCertificate)
  const id = spiffeIdOfLeaf(leaf)
  checkLeafExtensions(leaf)
  const bundle = bundles.getX509Bundle(id.trustDomain)
  if (bundle === undefined) {
    throw new X509SvidError('ERR_X509_SVID_NO_BUNDLE', `no X.509 bundle for trust domain ${id.trustDomain.name} (the peer claims ${id.toString()})`)
  }
  const path = validatePath(leaf, intermediates, bundle, bundles.listX509Bundles?.() ?? [], options.now ?? new Date())
  return { id, verifiedChain: path.map(cert => cert.x509) }
}

function parseChainCertificate (cert: Uint8Array | X509Certificate, index: number): ParsedCertificate {
  try {
    return parseCertificateCached(cert)
  } catch (err) {
    throw new X509SvidError('ERR_X509_SVID_MALFORMED', `certificate ${index} of the chain cannot be parsed: ${(err as Error).message}`, { cause: err })
  }
}
