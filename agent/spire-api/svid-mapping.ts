/**
 * SVIDs as SPIRE's API types carry them (types.X509SVID, types.JWTSVID in SPIRE's published types): the SPIFFE ID in
 * parts, times in unix seconds. What the fleet port answers devices and the Delegated Identity API answers delegates.
 */
import type { SpiffeIdMessage } from './messages'
import { idToProto } from './spire-id'

export interface X509SvidMessage {
  id: SpiffeIdMessage
  /** DER, leaf first, with the intermediates. */
  cert_chain: Buffer[]
  expires_at: number
  hint: string
}

export interface JwtSvidMessage {
  token: string
  id: SpiffeIdMessage
  expires_at: number
  issued_at: number
  hint: string
}

/** An X509-SVID of the entry with this (canonical) SPIFFE ID and hint. */
export function x509SvidToProto (spiffeId: string, svid: { readonly chain: readonly Buffer[], readonly expiresAt: Date }, hint: string): X509SvidMessage {
  return { id: idToProto(spiffeId), cert_chain: [...svid.chain], expires_at: unixSeconds(svid.expiresAt), hint }
}

/** A JWT-SVID of the entry with this (canonical) SPIFFE ID and hint. */
export function jwtSvidToProto (spiffeId: string, svid: { readonly token: string, readonly expiresAt: Date, readonly issuedAt: Date }, hint: string): JwtSvidMessage {
  return { token: svid.token, id: idToProto(spiffeId), expires_at: unixSeconds(svid.expiresAt), issued_at: unixSeconds(svid.issuedAt), hint }
}

function unixSeconds (date: Date): number {
  return Math.floor(date.getTime() / 1000)
}
