/**
 * How appended authorities meet what our trust domain's bundle already holds (the CA's authorities and those appended
 * before), as SPIRE's datastore merges an AppendBundle (bundleutil.MergeBundles): an X.509 authority already there
 * (the same DER) is not added again, nor is a JWT key already there (the same key ID and key). Where SPIRE would then
 * hold two keys under one key ID, we refuse the second: a JWT bundle names each key by its ID. And which appended
 * authority a removal names: the CA's own authorities are not appended ones, and cannot be removed.
 */
import type { SpiffeBundle } from '../../spiffe/spiffe-bundle'
import { normalizeSha256, publicKeyDer, sha256Of } from './appended-authority'
import type { AppendedAuthorities, AppendedAuthority, AuthorityRef } from './appended-authority'
import { AuthorityError } from './errors'

export interface AppendPlan {
  /** Those new to the bundle, in request order, each once. */
  readonly added: readonly AppendedAuthority[]
  /** Those the bundle already held (or the request repeated). */
  readonly present: readonly AppendedAuthority[]
}

/** What an append did: the authorities it added and those already there, and the appended authorities after it. */
export interface AppendResult extends AppendPlan {
  readonly appended: AppendedAuthorities
}

/** What a removal did: the authority removed, and the appended authorities after it. */
export interface RemoveResult {
  readonly removed: AppendedAuthority
  readonly appended: AppendedAuthorities
}

/** A JWT key the bundle holds: its PKIX DER, and whose it is (for the refusal of another key under its ID). */
interface HeldKey { readonly publicKey: Buffer, readonly whose: string }

/** Splits `candidates` into those new to a bundle of `held` (appended) and `ca`; throws ERR_AUTHORITY_KEY_ID_IN_USE. */
export function planAppend (candidates: readonly AppendedAuthority[], held: readonly AppendedAuthority[], ca: SpiffeBundle): AppendPlan {
  const certs = new Set([...ca.x509.authorities.map(cert => sha256Of(cert.raw)), ...held.flatMap(a => a.kind === 'x509' ? [a.sha256] : [])])
  const keys = new Map<string, HeldKey>([
    ...[...ca.jwt.keys].map(([kid, jwk]): [string, HeldKey] => [kid, { publicKey: publicKeyDer(jwk), whose: 'the CA\'s' }]),
    ...held.flatMap((a): Array<[string, HeldKey]> => a.kind === 'jwt' ? [[a.keyId, { publicKey: a.publicKey, whose: 'an appended one' }]] : [])
  ])
  const added: AppendedAuthority[] = []
  const present: AppendedAuthority[] = []
  for (const candidate of candidates) {
    if (candidate.kind === 'x509') {
      const known = certs.has(candidate.sha256)
      certs.add(candidate.sha256)
      ;(known ? present : added).push(candidate)
      continue
    }
    const heldKey = keys.get(candidate.keyId)
    if (heldKey !== undefined && !heldKey.publicKey.equals(candidate.publicKey)) {
      throw new AuthorityError('ERR_AUTHORITY_KEY_ID_IN_USE', `failed to convert JWT authority: key ID ${JSON.stringify(candidate.keyId)} is ` +
        `already in the bundle (${heldKey.whose}) with another key; a key ID names one key`)
    }
    keys.set(candidate.keyId, { publicKey: candidate.publicKey, whose: 'an appended one' })
    ;(heldKey === undefined ? added : present).push(candidate)
  }
  return { added, present }
}

/** The appended authority `ref` names; throws ERR_AUTHORITY_INVALID, ERR_AUTHORITY_OF_CA or ERR_AUTHORITY_NOT_FOUND. */
export function appendedAuthorityFor (ref: AuthorityRef, held: readonly AppendedAuthority[], ca: SpiffeBundle): AppendedAuthority {
  if ('sha256' in ref) {
    const sha256 = normalizeSha256(ref.sha256)
    const found = held.find(a => a.kind === 'x509' && a.sha256 === sha256)
    if (found !== undefined) return found
    if (ca.x509.authorities.some(cert => sha256Of(cert.raw) === sha256)) throw notRemovable(`the X.509 authority ${sha256}`)
    throw new AuthorityError('ERR_AUTHORITY_NOT_FOUND', `no appended X.509 authority has the SHA-256 fingerprint ${sha256}`)
  }
  if (typeof ref.keyId !== 'string' || ref.keyId === '') throw new AuthorityError('ERR_AUTHORITY_INVALID', 'name the authority to remove: a SHA-256 fingerprint or a key ID')
  const found = held.find(a => a.kind === 'jwt' && a.keyId === ref.keyId)
  if (found !== undefined) return found
  if (ca.jwt.findKey(ref.keyId) !== undefined) throw notRemovable(`the JWT key ${JSON.stringify(ref.keyId)}`)
  throw new AuthorityError('ERR_AUTHORITY_NOT_FOUND', `no appended JWT authority has the key ID ${JSON.stringify(ref.keyId)}`)
}

function notRemovable (what: string): AuthorityError {
  return new AuthorityError('ERR_AUTHORITY_OF_CA', `${what} is the CA's own, not an appended one: it leaves the bundle when the CA ` +
    'retires it (chaperone ca show lists its schedule), and cannot be removed')
}
