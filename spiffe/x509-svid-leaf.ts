/**
 * The leaf rules of an X509-SVID (standards/X509-SVID.md §4, §5): which SPIFFE ID it carries and whether its
 * extensions allow it to be an SVID at all. Path validation is x509-path.ts's job.
 */
import { X509SvidError } from './errors'
import { parseSpiffeId } from './id'
import type { SpiffeId } from './id'
import { KeyUsage, OID } from './x509-cert'
import type { ParsedCertificate } from './x509-cert'

/** §2: exactly one URI SAN, a valid SPIFFE ID with a path (a trust domain's own ID names no workload). */
export function spiffeIdOfLeaf (leaf: ParsedCertificate): SpiffeId {
  if (leaf.uris.length === 0) throw new X509SvidError('ERR_X509_SVID_NO_URI_SAN', 'leaf certificate has no URI SAN, so it carries no SPIFFE ID')
  if (leaf.uris.length > 1) {
    throw new X509SvidError('ERR_X509_SVID_MULTIPLE_URI_SANS', `leaf certificate has ${leaf.uris.length} URI SANs; an X509-SVID has exactly one`)
  }
  const uri = leaf.uris[0]
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(uri)?.[1]
  if (scheme?.toLowerCase() !== 'spiffe') {
    throw new X509SvidError('ERR_X509_SVID_NOT_SPIFFE_URI', `leaf URI SAN ${JSON.stringify(uri.slice(0, 200))} is not a spiffe:// URI`)
  }
  let id: SpiffeId
  try {
    id = parseSpiffeId(uri)
  } catch (err) {
    throw new X509SvidError('ERR_X509_SVID_ID_INVALID', `leaf URI SAN is not a valid SPIFFE ID: ${(err as Error).message}`, { cause: err })
  }
  if (!id.hasPath) {
    throw new X509SvidError('ERR_X509_SVID_ID_NO_PATH', `leaf SPIFFE ID ${id.toString()} has no path: a trust domain's own ID cannot identify a workload`)
  }
  return id
}

/** §4.1–4.4 and RFC 5280 §4.1.2.6, §4.2: the leaf's extensions. */
export function checkLeafExtensions (leaf: ParsedCertificate): void {
  if (leaf.subjectIsEmpty && !leaf.sanCritical) {
    throw new X509SvidError('ERR_X509_SVID_MALFORMED', 'leaf certificate has an empty subject, so its subjectAltName must be critical (RFC 5280 §4.2.1.6)')
  }
  if (leaf.basicConstraints?.cA === true) {
    throw new X509SvidError('ERR_X509_SVID_LEAF_IS_CA', 'leaf certificate has basicConstraints cA=true; an X509-SVID leaf must not be a CA')
  }
  checkLeafKeyUsage(leaf)
  const eku = leaf.extKeyUsage
  if (eku !== undefined && !eku.includes(OID.anyExtendedKeyUsage)) {
    const missing = [[OID.serverAuth, 'serverAuth'], [OID.clientAuth, 'clientAuth']].filter(([oid]) => !eku.includes(oid)).map(([, name]) => name)
    if (missing.length > 0) {
      throw new X509SvidError('ERR_X509_SVID_EXT_KEY_USAGE', `leaf extKeyUsage lacks ${missing.join(' and ')}; an X509-SVID is used for both ends of mutual TLS`)
    }
  }
  if (leaf.unhandledCritical.length > 0) {
    throw new X509SvidError('ERR_X509_SVID_CRITICAL_EXTENSION', `leaf certificate has unsupported critical extension(s) ${leaf.unhandledCritical.join(', ')}`)
  }
}

function checkLeafKeyUsage (leaf: ParsedCertificate): void {
  const fail = (why: string): never => { throw new X509SvidError('ERR_X509_SVID_KEY_USAGE', `leaf ${why}`) }
  const ku = leaf.keyUsage
  if (ku === undefined) fail('certificate has no keyUsage extension; an X509-SVID must carry one (critical, with digitalSignature)')
  else {
    if (!ku.critical) fail('keyUsage extension is not critical')
    if ((ku.mask & KeyUsage.digitalSignature) === 0) fail('keyUsage lacks digitalSignature')
    if ((ku.mask & KeyUsage.keyCertSign) !== 0) fail('keyUsage has keyCertSign; only signing certificates may sign certificates')
    if ((ku.mask & KeyUsage.cRLSign) !== 0) fail('keyUsage has cRLSign; only signing certificates may sign CRLs')
  }
}
