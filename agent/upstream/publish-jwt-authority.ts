/**
 * The device's JWT signing key, published to the upstream SPIRE server as SPIRE's `spire` UpstreamAuthority publishes a
 * downstream server's (pkg/server/plugin/upstreamauthority/spire): `Bundle/PublishJWTAuthority` {jwt_authority} over
 * mTLS with the X509-SVID of the device's downstream entry. SPIRE refuses any other caller (PermissionDenied
 * "authorization denied for method …", kept as ERR_UPSTREAM_DENIED). JWT-SVIDs validate across a nested trust domain
 * only because every server's key reaches the whole topology (spire-compat.md §2.2), so SPIRE appends the key to the
 * trust domain's bundle and answers with all its JWT authorities: the union the device serves. Each must have a key
 * ID and a readable key (ERR_UPSTREAM_BUNDLE_INVALID), and ours must be among them (ERR_JWT_AUTHORITY_NOT_PUBLISHED).
 */
import type { KeyObject } from 'node:crypto'
import { BundleService } from '../spire-api/grpc-proto'
import type { JwtKeyMessage } from '../spire-api/messages'
import { UpstreamError } from './errors'
import { jwtAuthorityKey } from './upstream-bundle'
import { callUpstream, deadlineAfter, upstreamClient } from './upstream-client'
import type { ClientSvid } from './upstream-client'
import type { UpstreamServer } from './server-trust'

/** One JWT authority of the trust domain's bundle. */
export interface JwtAuthority {
  readonly keyId: string
  readonly publicKey: KeyObject
  /** None when SPIRE does not know (expires_at 0). */
  readonly expiresAt?: Date
}

/** Publishes `key` to `server` as `downstream` (the downstream entry's SVID); the trust domain's JWT authorities. */
export async function publishJwtAuthority (
  server: UpstreamServer,
  downstream: ClientSvid,
  key: { keyId: string, publicKey: KeyObject, expiresAt: Date },
  options: { timeoutMs?: number } = {}
): Promise<JwtAuthority[]> {
  const client = upstreamClient(BundleService, server, downstream)
  try {
    const request = {
      jwt_authority: {
        public_key: key.publicKey.export({ type: 'spki', format: 'der' }),
        key_id: key.keyId,
        expires_at: Math.floor(key.expiresAt.getTime() / 1000)
      }
    }
    const response = await callUpstream<{ jwt_authorities: JwtKeyMessage[] }>(client, 'PublishJWTAuthority', request, deadlineAfter(options.timeoutMs), server.address)
    const authorities = response.jwt_authorities.map(authorityOf)
    const underOurId = authorities.filter(authority => authority.keyId === key.keyId)
    if (!underOurId.some(authority => authority.publicKey.equals(key.publicKey))) {
      const listed = underOurId.length === 0 ? 'does not list it' : 'lists another public key under its key ID'
      throw new UpstreamError('ERR_JWT_AUTHORITY_NOT_PUBLISHED', `PublishJWTAuthority on SPIRE server ${server.address} did not take JWT key ${JSON.stringify(key.keyId)}: its answer ${listed}`)
    }
    return authorities
  } finally {
    client.close()
  }
}

function authorityOf (message: JwtKeyMessage): JwtAuthority {
  try {
    const publicKey = jwtAuthorityKey(message)
    return { keyId: message.key_id, publicKey, expiresAt: message.expires_at === 0 ? undefined : new Date(message.expires_at * 1000) }
  } catch (err) {
    throw new UpstreamError('ERR_UPSTREAM_BUNDLE_INVALID', `the JWT authorities from PublishJWTAuthority are refused: ${(err as Error).message}`, { cause: err })
  }
}
