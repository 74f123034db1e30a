/**
 * The admin API's appended authorities (admin.proto AppendAuthorities, RemoveAppendedAuthority): an append's bundle
 * document as the store's input, a removal's reference, and what either did as the AppendedAuthorities message.
 */
import type { SpiffeBundle } from '../../spiffe/spiffe-bundle'
import { AgentError } from '../errors'
import { isUnexpired, publicKeyDer } from '../store'
import type { AppendedAuthorities, AppendedAuthority, AuthoritiesInput, AuthorityRef } from '../store'
import { bundleToMessage } from './bundle-message'
import type { BundleMessage } from './bundle-message'

export interface AppendedAuthorityMessage {
  kind: 'x509' | 'jwt'
  sha256: string
  subject: string
  key_id: string
  expires_at: number
  appended_at: number
  expired: boolean
}

export interface AppendedAuthoritiesMessage {
  bundle: BundleMessage
  authorities: AppendedAuthorityMessage[]
  added: AppendedAuthorityMessage[]
  present: AppendedAuthorityMessage[]
  removed: AppendedAuthorityMessage | null
}

/** What a change did to the appended authorities: an append's added and present ones, or a removal's. */
export interface AuthoritiesChanged {
  readonly added?: readonly AppendedAuthority[]
  readonly present?: readonly AppendedAuthority[]
  readonly removed?: AppendedAuthority
}

/** The X.509 and JWT authorities of a bundle document an operator sent, for the store. */
export function documentToAuthorities (document: SpiffeBundle): AuthoritiesInput {
  return {
    x509: document.x509.authorities.map(cert => cert.raw),
    jwt: [...document.jwt.keys].map(([keyId, jwk]) => ({ keyId, publicKey: publicKeyDer(jwk) }))
  }
}

/** The authority a removal names: by exactly one of a SHA-256 fingerprint and a key ID. */
export function messageToAuthorityRef (message: { sha256: string, key_id: string }): AuthorityRef {
  if ((message.sha256 === '') === (message.key_id === '')) {
    throw new AgentError('ERR_ADMIN_REQUEST_INVALID', 'name the appended authority to remove by its SHA-256 fingerprint or by its key ID, not both')
  }
  return message.sha256 === '' ? { keyId: message.key_id } : { sha256: message.sha256 }
}

/** The message: our bundle as served (`own`), every appended authority as of `now` (unix seconds), and what changed. */
export function appendedAuthoritiesToMessage (own: SpiffeBundle, appended: AppendedAuthorities, changed: AuthoritiesChanged, now: number): AppendedAuthoritiesMessage {
  const message = (authority: AppendedAuthority): AppendedAuthorityMessage => ({
    kind: authority.kind,
    sha256: authority.kind === 'x509' ? authority.sha256 : '',
    subject: authority.kind === 'x509' ? authority.subject : '',
    key_id: authority.kind === 'jwt' ? authority.keyId : '',
    expires_at: authority.expiresAt,
    appended_at: authority.appendedAt,
    expired: !isUnexpired(authority, now)
  })
  return {
    bundle: bundleToMessage(own),
    authorities: appended.authorities.map(message),
    added: (changed.added ?? []).map(message),
    present: (changed.present ?? []).map(message),
    removed: changed.removed === undefined ? null : message(changed.removed)
  }
}
