/** The caller's identity from a JWT-SVID in `Authorization: Bearer`, validated here (the X509 path is peer-header.ts). */
import type { JwtBundleSource } from './bundle-source'
import { JwtSource } from './jwt-source'
import { validateJwtSvid } from './jwt-svid'
import type { JwtSvid } from './jwt-svid'
import { PeerHeaderError, headerValues } from './peer-header'
import type { RequestHeaders } from './peer-header'

/**
 * The caller's JWT-SVID from `Authorization: Bearer <token>`, validated for `audience` against `bundles` (or a
 * JwtSource's). No such header (absent, sent twice, or another scheme) is ERR_BEARER_TOKEN_MISSING; a token that
 * does not validate rejects with its JwtSvidError.
 */
export async function jwtSvidFromRequest (req: RequestHeaders, bundles: JwtBundleSource | JwtSource, audience: string): Promise<JwtSvid> {
  const values = headerValues(req, 'authorization')
  const missing = (why: string): PeerHeaderError => new PeerHeaderError('ERR_BEARER_TOKEN_MISSING', `no JWT-SVID: ${why}`)
  if (values.length === 0) throw missing('the request has no Authorization header')
  if (values.length > 1) throw missing(`the Authorization header was sent ${values.length} times`)
  // RFC 6750 §2.1: the scheme is case-insensitive, then one space, then the token.
  const match = /^Bearer +(\S*)$/i.exec(values[0])
  // The header is not echoed: it may hold a credential.
  if (match === null) throw missing('the Authorization header is not "Bearer <token>"')
  if (bundles instanceof JwtSource) return await bundles.validate(match[1], audience)
  return await validateJwtSvid(match[1], bundles, audience)
}
