/**
 * The trust domain's bundle as the upstream SPIRE server holds it: `Bundle/GetBundle`, which SPIRE answers to anyone
 * (spire-compat.md §1.1), called over the server-checked TLS (with the device's X509-SVID when it has one, as SPIRE's
 * `spire` UpstreamAuthority does every 5 s). X.509 roots and JWT authorities (PKIX keys by key ID) become a
 * SpiffeBundle; another trust domain's bundle, one without X.509 roots, or an authority that cannot be read is
 * ERR_UPSTREAM_BUNDLE_INVALID.
 */
import { createPublicKey } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { JwtBundle } from '../../spiffe/jwt-bundle'
import type { TrustDomain } from '../../spiffe/id'
import { SpiffeBundle } from '../../spiffe/spiffe-bundle'
import { X509Bundle } from '../../spiffe/x509-bundle'
import { BundleService } from '../spire-api/grpc-proto'
import type { BundleMessage, JwtKeyMessage } from '../spire-api/messages'
import { UpstreamError } from './errors'
import { callUpstream, deadlineAfter, upstreamClient } from './upstream-client'
import type { ClientSvid } from './upstream-client'
import type { UpstreamServer } from './server-trust'

export interface UpstreamBundleOptions {
  /** The X509-SVID to present (e.g. the downstream entry's); none: plain server-checked TLS. */
  readonly svid?: ClientSvid
  /** For the call; 30 s by default. */
  readonly timeoutMs?: number
}

/** The bundle of `server`'s trust domain. */
export async function fetchUpstreamBundle (server: UpstreamServer, options: UpstreamBundleOptions = {}): Promise<SpiffeBundle> {
  const client = upstreamClient(BundleService, server, options.svid)
  try {
    const message = await callUpstream<BundleMessage>(client, 'GetBundle', {}, deadlineAfter(options.timeoutMs), server.address)
    return bundleFromMessage(message, server.trustDomain)
  } finally {
    client.close()
  }
}

/** SPIRE's bundle message as a SpiffeBundle of `trustDomain`. */
export function bundleFromMessage (message: BundleMessage, trustDomain: TrustDomain): SpiffeBundle {
  const invalid = (why: string, cause?: unknown): UpstreamError =>
    new UpstreamError('ERR_UPSTREAM_BUNDLE_INVALID', `the bundle from GetBundle is refused: ${why}`, { cause })
  if (message.trust_domain !== trustDomain.name) throw invalid(`it is trust domain "${message.trust_domain}"'s, not ${trustDomain.name}'s`)
  if (message.x509_authorities.length === 0) throw invalid('it has no X.509 root')
  try {
    const jwt = new JwtBundle(trustDomain)
    for (const authority of message.jwt_authorities) jwt.addKey(authority.key_id, jwtAuthorityKey(authority).export({ format: 'jwk' }))
    return new SpiffeBundle(trustDomain, {
      x509: new X509Bundle(trustDomain, message.x509_authorities.map(authority => authority.asn1)),
      jwt,
      sequence: message.sequence_number,
      refreshHintSeconds: message.refresh_hint === 0 ? undefined : message.refresh_hint
    })
  } catch (err) {
    throw invalid((err as Error).message, err)
  }
}

/** The public key of one of SPIRE's JWT authorities (PKIX DER under a key ID); throws, naming it, when it has neither. */
export function jwtAuthorityKey ({ key_id: kid, public_key: der }: JwtKeyMessage): KeyObject {
  if (kid === '') throw new Error('a JWT authority has no key ID')
  try {
    return createPublicKey({ key: der, format: 'der', type: 'spki' })
  } catch (err) {
    throw new Error(`JWT authority ${JSON.stringify(kid)} has no readable public key: ${(err as Error).message}`, { cause: err })
  }
}
