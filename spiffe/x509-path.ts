/**
 * RFC 5280 §6 path validation from an X509-SVID leaf to one trust domain's authorities: issuer by name and key
 * identifier, every signature checked by OpenSSL (Node's X509Certificate.verify), validity at `now`, signing
 * certificates that really are CAs, and path length constraints.
 */
import { X509SvidError } from './errors'
import type { X509Bundle } from './x509-bundle'
import { KeyUsage, describeCertificate } from './x509-cert'
import type { ParsedCertificate } from './x509-cert'
import { isSignedBy } from './x509-cert-cache'

interface IssuerSearch {
  issuer?: ParsedCertificate
  /** A certificate with the right name and key identifier exists, but its key does not verify the signature. */
  badSignature: boolean
  /** A certificate with the right name exists, but with another key identifier: an impostor, or a CA not held. */
  otherKey: boolean
}

/** The candidate named as the issuer (with the matching key identifier, when both carry one) whose key verifies the signature. */
export function findIssuer (cert: ParsedCertificate, candidates: Iterable<ParsedCertificate>): IssuerSearch {
  const search: IssuerSearch = { badSignature: false, otherKey: false }
  for (const candidate of candidates) {
    if (candidate.x509.subject !== cert.x509.issuer) continue
    if (cert.authorityKeyId !== undefined && candidate.subjectKeyId !== undefined && !cert.authorityKeyId.equals(candidate.subjectKeyId)) {
      search.otherKey = true
    } else if (isSignedBy(cert, candidate)) {
      return { issuer: candidate, badSignature: false, otherKey: false }
    } else {
      search.badSignature = true
    }
  }
  return search
}

function checkValidity (cert: ParsedCertificate, now: Date, role: string): void {
  if (now < cert.notBefore) {
    throw new X509SvidError('ERR_X509_SVID_NOT_YET_VALID', `${role} ${describeCertificate(cert)} is not yet valid (notBefore ${cert.notBefore.toISOString()})`)
  }
  if (now > cert.notAfter) {
    throw new X509SvidError('ERR_X509_SVID_EXPIRED', `${role} ${describeCertificate(cert)} expired at ${cert.notAfter.toISOString()}`)
  }
}

/** X509-SVID.md §4.1, §4.3 and RFC 5280 §4.2.1.9: a certificate that signs others must be a CA allowed to. */
function checkSigningCertificate (cert: ParsedCertificate, role: string, casBelow: number): void {
  const fail = (why: string): never => {
    throw new X509SvidError('ERR_X509_SVID_BAD_SIGNING_CERT', `${role} ${describeCertificate(cert)} ${why}`)
  }
  if (cert.basicConstraints?.cA !== true) fail('signed a certificate but is not a CA (basicConstraints cA is not true)')
  if (cert.keyUsage !== undefined && (cert.keyUsage.mask & KeyUsage.keyCertSign) === 0) fail('signed a certificate but its keyUsage lacks keyCertSign')
  const pathLen = cert.basicConstraints?.pathLen
  if (pathLen !== undefined && casBelow > pathLen) fail(`allows ${pathLen} intermediate(s) below it (pathLenConstraint) but the chain has ${casBelow}`)
  if (cert.unhandledCritical.length > 0) {
    throw new X509SvidError('ERR_X509_SVID_CRITICAL_EXTENSION', `${role} ${describeCertificate(cert)} has unsupported critical extension(s) ${cert.unhandledCritical.join(', ')}`)
  }
}

/**
 * Walks from the leaf through the presented intermediates to an authority of `bundle`.
 * Returns the verified path, leaf first, ending with the authority; throws X509SvidError naming the defect.
 * `otherBundles` only sharpen the error when the chain ends at another trust domain's authority.
 */
export function validatePath (
  leaf: ParsedCertificate,
  intermediates: readonly ParsedCertificate[],
  bundle: X509Bundle,
  otherBundles: Iterable<X509Bundle>,
  now: Date
): ParsedCertificate[] {
  const path = [leaf]
  const pool = [...intermediates]
  let current = leaf
  for (;;) {
    const role = current === leaf ? 'leaf' : 'intermediate'
    checkValidity(current, now, role)
    const anchor = findIssuer(current, bundle.parsedAuthorities)
    if (anchor.issuer !== undefined) {
      const anchorRole = `authority of trust domain ${bundle.trustDomain.name}`
      checkValidity(anchor.issuer, now, anchorRole)
      checkSigningCertificate(anchor.issuer, anchorRole, path.length - 1)
      path.push(anchor.issuer)
      return path
    }
    const next = findIssuer(current, pool)
    if (next.issuer !== undefined) {
      checkSigningCertificate(next.issuer, 'intermediate', path.length - 1)
      pool.splice(pool.indexOf(next.issuer), 1)
      path.push(next.issuer)
      current = next.issuer
      continue
    }
    if (anchor.badSignature || next.badSignature) {
      throw new X509SvidError('ERR_X509_SVID_BAD_SIGNATURE', `${role} ${describeCertificate(current)} has a signature that its issuer's key does not verify (altered or forged)`)
    }
    throw untrusted(current, role, leaf, bundle, otherBundles, anchor.otherKey)
  }
}

/** Explains why no issuer was found: a self-signed leaf, another trust domain's authority, or simply unknown. */
function untrusted (
  current: ParsedCertificate, role: string, leaf: ParsedCertificate, bundle: X509Bundle, otherBundles: Iterable<X509Bundle>, nameOnlyMatch: boolean
): X509SvidError {
  const td = bundle.trustDomain.name
  if (current === leaf && current.x509.issuer === current.x509.subject && isSignedBy(current, current)) {
    return new X509SvidError('ERR_X509_SVID_SELF_SIGNED', `leaf ${describeCertificate(current)} is self-signed; an X509-SVID must chain to an authority of trust domain ${td}`)
  }
  for (const other of otherBundles) {
    if (other.trustDomain.equals(bundle.trustDomain)) continue
    if (findIssuer(current, other.parsedAuthorities).issuer !== undefined) {
      return new X509SvidError('ERR_X509_SVID_WRONG_TRUST_DOMAIN',
        `SVID names trust domain ${td} but chains to an authority of trust domain ${other.trustDomain.name}; each trust domain's SVIDs must chain to its own bundle`)
    }
  }
  const issuer = (current.x509.issuer ?? '').replace(/\n/g, ', ')
  if (nameOnlyMatch) {
    return new X509SvidError('ERR_X509_SVID_UNTRUSTED',
      `${role} ${describeCertificate(current)} was issued by "${issuer}", whose name matches an authority of trust domain ${td} but not its key (an impostor CA, or a CA the bundle does not hold)`)
  }
  return new X509SvidError('ERR_X509_SVID_UNTRUSTED',
    `${role} ${describeCertificate(current)} was issued by "${issuer}", which is neither in the presented chain nor an authority of trust domain ${td} (an untrusted CA, or an intermediate missing from the chain)`)
}
