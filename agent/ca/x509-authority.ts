/**
 * X.509 authorities: the CA certificates X509-SVIDs are signed by. Each is a self-signed root of the trust domain, or
 * an intermediate signed by the operator's upstream CA. Signing certificates carry cA=true and keyCertSign (critical)
 * and the trust domain's own ID as URI SAN (X509-SVID.md §4.1, §4.3).
 */
import { X509Certificate } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import type { TrustDomain } from '../../spiffe'
import { generateKeys, keyTypeName, signingKeyOf } from './keys'
import type { KeyType } from './keys'
import type { KeyState, ScheduledKey } from './rotation'
import { certificateFacts, encodeName, issueCertificate, keyIdOf, newSerialNumber } from './x509-certificate'
import type { CertificateIssuer } from './x509-certificate'
import { CaError } from './errors'
import type { RemoteUpstream, SignedAuthority } from './remote-upstream'
import { checkUpstreamCurrent } from './upstream'
import type { Upstream } from './upstream'
import { backdated, expiryWithin } from './validity'

/** X.520 serialNumber: makes every authority's subject distinct, so tools and logs can tell rotated CAs apart. */
const SERIAL_NUMBER_ATTRIBUTE = '2.5.4.5'

export interface X509Authority extends ScheduledKey {
  /** The certificate's serial number in hex; names the authority's files. */
  readonly id: string
  readonly cert: X509Certificate
  readonly privateKey: KeyObject
  /** How SVIDs are signed by this authority. */
  readonly issuer: CertificateIssuer
  /** `ec-p256`, `rsa-2048`. */
  readonly keyType: string
  /** The upstream certificates above an intermediate authority (not the root); empty for a self-signed root. */
  readonly upstreamChain: readonly Buffer[]
  /** What follows an SVID in its chain: nothing for a root (peers hold it), else this intermediate and the chain above. */
  readonly intermediates: readonly Buffer[]
}

export async function createAuthority (
  trustDomain: TrustDomain, keyType: KeyType, ttlSeconds: number, now: Date, upstream?: Upstream
): Promise<X509Authority> {
  const keys = await generateKeys(keyType)
  const id = newSerialNumber()
  const subject = [['O', 'Chaperone'], ['CN', 'Chaperone CA'], [SERIAL_NUMBER_ATTRIBUTE, id]] as const
  const signingKey = await signingKeyOf(keys.privateKey)
  if (upstream !== undefined) checkUpstreamCurrent(upstream, now)
  const self: CertificateIssuer = { subject: encodeName(subject), keyId: await keyIdOf(keys.publicKey), signingKey }
  const der = await issueCertificate(upstream?.issuer ?? self, {
    role: 'ca',
    subject,
    publicKey: keys.publicKey,
    notBefore: backdated(now),
    notAfter: expiryWithin(now, ttlSeconds, upstream?.notAfter),
    uri: trustDomain.idString
  }, id)
  return authorityOf(id, 'prepared', der, upstream?.chain ?? [], keys.privateKey, upstream !== undefined)
}

/** An authority certified by a remote upstream (its serial number names it), and the roots the upstream says it chains to. */
export async function createRemoteAuthority (
  keyType: KeyType, ttlSeconds: number, remote: RemoteUpstream
): Promise<{ authority: X509Authority, roots: SignedAuthority['roots'] }> {
  const keys = await generateKeys(keyType)
  const { chain: [der, ...chain], roots } = await remote.signAuthority(keys, ttlSeconds)
  const id = new X509Certificate(der).serialNumber.toLowerCase()
  if (!/^[0-9a-f]{1,40}$/.test(id)) throw new CaError('ERR_CA_UPSTREAM_INVALID', `${remote.name} certified our authority with serial number ${id}, longer than RFC 5280's 20 octets`)
  return { authority: await authorityOf(id, 'prepared', der, chain, keys.privateKey, true), roots }
}

/** An authority from its parts (fresh, or read back from disk); the caller has checked the key matches the certificate. */
export async function authorityOf (
  id: string, state: KeyState, der: Buffer, upstreamChain: readonly Buffer[], privateKey: KeyObject, isIntermediate: boolean
): Promise<X509Authority> {
  const cert = new X509Certificate(der)
  const facts = await certificateFacts(der)
  return {
    id,
    state,
    cert,
    privateKey,
    issuer: { subject: facts.subject, keyId: facts.keyId, signingKey: await signingKeyOf(privateKey) },
    keyType: keyTypeName(privateKey) ?? String(privateKey.asymmetricKeyType),
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    upstreamChain,
    intermediates: isIntermediate ? [der, ...upstreamChain] : []
  }
}
