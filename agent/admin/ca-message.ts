/** The CA's status as admin.proto's CaStatus message. */
import type { CaStatus } from '../ca'

export interface AuthorityMessage {
  kind: 'x509' | 'jwt'
  state: string
  subject: string
  serial: string
  key_type: string
  not_before: string
  not_after: string
  fingerprint256: string
  kid: string
  activates_at: string
}

export interface CaStatusMessage {
  trust_domain: string
  authorities: AuthorityMessage[]
  bundle_sequence: number
  upstream: boolean
  upstream_name: string
  issues_until: string
}

const BLANK = { subject: '', serial: '', key_type: '', not_before: '', not_after: '', fingerprint256: '', kid: '', activates_at: '' }

export function caStatusMessage (trustDomain: string, status: CaStatus): CaStatusMessage {
  const x509 = status.x509.map(a => ({
    ...BLANK,
    kind: 'x509' as const,
    state: a.state,
    subject: a.subject,
    serial: a.serial,
    key_type: a.keyType,
    not_before: a.notBefore.toISOString(),
    not_after: a.notAfter.toISOString(),
    fingerprint256: a.fingerprint256,
    activates_at: a.activatesAt?.toISOString() ?? ''
  }))
  const jwt = status.jwt.map(k => ({
    ...BLANK,
    kind: 'jwt' as const,
    state: k.state,
    key_type: k.alg,
    not_after: k.notAfter.toISOString(),
    kid: k.kid,
    activates_at: k.activatesAt?.toISOString() ?? ''
  }))
  return {
    trust_domain: trustDomain,
    authorities: [...x509, ...jwt],
    bundle_sequence: status.bundleSequence,
    upstream: status.upstream,
    upstream_name: status.upstreamName ?? '',
    issues_until: status.issuesUntil.toISOString()
  }
}
