/**
 * The birth certificate's chains of trust as Go's `leaf.Verify` builds them for SPIRE's x509pop (Roots = the
 * manufacturer roots, Intermediates = the rest of the payload, KeyUsages = Any): every chain from the leaf to a root,
 * or the error Go returns, in Go's words (crypto/x509 verify.go Verify, buildChains, isValid; x509.go
 * CheckSignatureFrom). Signatures are checked by OpenSSL. Not done, as in few birth-certificate PKIs: name
 * constraints (a critical one refuses the chain) and certificate policy processing.
 */
import { KeyUsage } from '../../spiffe/x509-cert'
import type { PopCertificate } from './x509pop-certificate'

/** Go's maxChainSignatureChecks: a bound on the work one hostile chain can cause. */
const MAX_SIGNATURE_CHECKS = 100

/** Critical extensions Go's parser understands beyond those spiffe/x509-cert.ts does (CRL DP, policies, AIA). */
const GO_HANDLED = new Set(['2.5.29.31', '2.5.29.32', '2.5.29.33', '2.5.29.36', '2.5.29.54', '1.3.6.1.5.5.7.1.1'])

/** Signature algorithms (x509.go signatureAlgorithmDetails) Go refuses as insecure, with its names for them. */
const INSECURE: Readonly<Record<string, string>> = {
  '1.2.840.113549.1.1.4': 'MD5-RSA',
  '1.2.840.113549.1.1.5': 'SHA1-RSA',
  '1.3.14.3.2.29': 'SHA1-RSA',
  '1.2.840.10045.4.1': 'ECDSA-SHA1',
  '1.2.840.10040.4.3': 'DSA-SHA1'
}
/** Those it verifies: RSA PKCS #1 v1.5 and PSS, ECDSA with SHA-2, Ed25519. */
const SUPPORTED = new Set([
  '1.2.840.113549.1.1.11', '1.2.840.113549.1.1.12', '1.2.840.113549.1.1.13', '1.2.840.113549.1.1.10',
  '1.2.840.10045.4.3.2', '1.2.840.10045.4.3.3', '1.2.840.10045.4.3.4', '1.3.101.112'
])
const VERIFY_FAILURE: Readonly<Record<string, string>> = {
  rsa: 'crypto/rsa: verification error',
  ecdsa: 'x509: ECDSA verification failure',
  ed25519: 'x509: Ed25519 verification failure'
}
const UNSUPPORTED_ALGORITHM = 'x509: cannot verify signature: algorithm unimplemented'
const SIGNATURE_LIMIT = 'x509: signature check attempts limit reached while verifying certificate chain'

interface Pools { roots: readonly PopCertificate[], intermediates: readonly PopCertificate[], now: Date, checks: number }
interface Built { chains: PopCertificate[][], err?: string }

/** The verified chains, leaf first, each ending at a root; throws an Error carrying Go's reason. */
export function verifyPopChains (leaf: PopCertificate, intermediates: readonly PopCertificate[], roots: readonly PopCertificate[], now: Date): PopCertificate[][] {
  const leafError = isValid(leaf, 'leaf', [], now)
  if (leafError !== undefined) throw new Error(leafError)
  if (roots.some(root => root.der.equals(leaf.der))) return [[leaf]]
  const { chains, err } = buildChains([leaf], { roots: unique(roots), intermediates: unique(intermediates), now, checks: 0 })
  if (chains.length === 0) throw new Error(err)
  return chains
}

function buildChains (current: PopCertificate[], pools: Pools): Built {
  const chains: PopCertificate[][] = []
  const child = current[current.length - 1]
  let err: string | undefined
  let hint: { err: string, cert: PopCertificate } | undefined
  search: for (const [type, pool] of [['root', pools.roots], ['intermediate', pools.intermediates]] as const) {
    for (const candidate of potentialParents(child, pool)) {
      if (++pools.checks > MAX_SIGNATURE_CHECKS) {
        err = SIGNATURE_LIMIT
        break search
      }
      if (candidate.keyType === undefined || current.some(cert => cert.rawSubject.equals(candidate.rawSubject) && cert.spki.equals(candidate.spki))) continue
      // Go keeps the first rejected candidate's reason as a hint, and the last isValid or child error as its answer.
      const signatureError = checkSignatureFrom(child, candidate)
      if (signatureError !== undefined) {
        hint ??= { err: signatureError, cert: candidate }
        continue
      }
      err = isValid(candidate, type, current, pools.now)
      if (err !== undefined) {
        hint ??= { err, cert: candidate }
        continue
      }
      if (type === 'root') {
        chains.push([...current, candidate])
        continue
      }
      const below = buildChains([...current, candidate], pools)
      chains.push(...below.chains)
      err = below.err
      if (err === SIGNATURE_LIMIT) break search
    }
  }
  if (chains.length > 0) return { chains }
  return { chains, err: err ?? unknownAuthority(hint) }
}

/** CertPool.findPotentialParents: same issuer name; key identifiers matching first, then one missing, then differing. */
function potentialParents (child: PopCertificate, pool: readonly PopCertificate[]): PopCertificate[] {
  const akid = child.parsed.authorityKeyId ?? Buffer.alloc(0)
  const rank = (candidate: PopCertificate): number => {
    const skid = candidate.parsed.subjectKeyId ?? Buffer.alloc(0)
    if (skid.equals(akid)) return 0
    return skid.length === 0 || akid.length === 0 ? 1 : 2
  }
  return pool.filter(candidate => candidate.rawSubject.equals(child.rawIssuer)).sort((a, b) => rank(a) - rank(b))
}

/** x509.go CheckSignatureFrom (SHA-1 refused, as in chain building) and Go 1.24's 1024-bit RSA minimum. */
function checkSignatureFrom (child: PopCertificate, parent: PopCertificate): string | undefined {
  const { basicConstraints, keyUsage, publicKey } = parent.parsed
  if ((parent.version === 3 && basicConstraints === undefined) || basicConstraints?.cA === false || (keyUsage !== undefined && keyUsage.mask !== 0 && (keyUsage.mask & KeyUsage.keyCertSign) === 0)) {
    return 'x509: invalid signature: parent certificate cannot sign this kind of certificate'
  }
  const insecure = INSECURE[child.signatureAlgorithm]
  if (insecure !== undefined) return `x509: cannot verify signature: insecure algorithm ${insecure}`
  if (!SUPPORTED.has(child.signatureAlgorithm) || parent.keyType === 'dsa') return UNSUPPORTED_ALGORITHM
  const bits = publicKey.asymmetricKeyDetails?.modulusLength ?? 0
  if (parent.keyType === 'rsa' && bits < 1024) return `crypto/rsa: ${bits}-bit keys are insecure (see https://go.dev/pkg/crypto/rsa#hdr-Minimum_key_size)`
  return child.parsed.x509.verify(publicKey) ? undefined : VERIFY_FAILURE[parent.keyType ?? 'rsa']
}

/** verify.go isValid: critical extensions, validity at `now`, intermediates are CAs, path length constraints. */
function isValid (cert: PopCertificate, type: 'leaf' | 'intermediate' | 'root', current: readonly PopCertificate[], now: Date): string | undefined {
  if (cert.parsed.unhandledCritical.some(oid => !GO_HANDLED.has(oid))) return 'x509: unhandled critical extension'
  const expired = 'x509: certificate has expired or is not yet valid: current time'
  if (now < cert.parsed.notBefore) return `${expired} ${rfc3339(now)} is before ${rfc3339(cert.parsed.notBefore)}`
  if (now > cert.parsed.notAfter) return `${expired} ${rfc3339(now)} is after ${rfc3339(cert.parsed.notAfter)}`
  const constraints = cert.parsed.basicConstraints
  if (type === 'intermediate' && constraints?.cA !== true) return 'x509: certificate is not authorized to sign other certificates'
  if (constraints?.pathLen !== undefined && current.length - 1 > constraints.pathLen) return 'x509: too many intermediates for path length constraint'
  return undefined
}

function unknownAuthority (hint: { err: string, cert: PopCertificate } | undefined): string {
  const message = 'x509: certificate signed by unknown authority'
  if (hint === undefined) return message
  const { commonName, organization, serialHex } = hint.cert
  const name = commonName !== '' ? commonName : organization !== '' ? organization : `serial:${BigInt(`0x${serialHex}`).toString()}`
  return `${message} (possibly because of ${JSON.stringify(hint.err)} while trying to verify candidate authority certificate ${JSON.stringify(name)})`
}

/** Go's time.RFC3339, in UTC. */
function rfc3339 (date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z')
}

/** A CertPool holds each certificate once. */
function unique (certs: readonly PopCertificate[]): PopCertificate[] {
  return certs.filter((cert, i) => certs.findIndex(other => other.der.equals(cert.der)) === i)
}
