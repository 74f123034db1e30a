/**
 * Knowing the upstream is the SPIRE server of our trust domain, as SPIRE's agent does before it attests: the server's
 * chain must verify to the operator-given trust bundle (SPIRE's agent `trust_bundle_path`, PEM) and its X509-SVID
 * must name `spiffe://<td>/spire/server` (spire-compat.md §1.1). The ID check replaces the hostname check (never just
 * switched off). The gRPC channel enforces both; a TLS handshake of its own first (`checkServerIdentity`) tells an
 * unreachable server apart from a wrong one, which gRPC would report alike as UNAVAILABLE.
 */
import { credentials } from '@grpc/grpc-js'
import type { ChannelCredentials, ChannelOptions } from '@grpc/grpc-js'
import { isIP } from 'node:net'
import { connect } from 'node:tls'
import { parseSpiffeId } from '../../spiffe/id'
import type { SpiffeId, TrustDomain } from '../../spiffe/id'
import { spiffeCheckServerIdentity } from '../../spiffe/tls-peer'
import { X509Bundle } from '../../spiffe/x509-bundle'
import { UpstreamError } from './errors'

/** Where the upstream SPIRE server listens and how it is known. */
export interface UpstreamServer {
  /** host:port of the server's TCP listener (SPIRE's `bind_address`/`bind_port`, 8081 by default). */
  readonly address: string
  readonly trustDomain: TrustDomain
  /** The trust domain's X.509 roots the server's chain must verify to. */
  readonly bundle: X509Bundle
}

/** Reads the bundle of `trustDomain` from PEM text (SPIRE's agent `trust_bundle_path`); a bad one is ERR_BUNDLE_INVALID. */
export function upstreamServer (address: string, trustDomain: TrustDomain, trustBundlePem: string): UpstreamServer {
  return { address, trustDomain, bundle: X509Bundle.fromPem(trustDomain, trustBundlePem) }
}

/** SPIRE's server ID in a trust domain. */
export function spireServerId (trustDomain: TrustDomain): SpiffeId {
  return parseSpiffeId(`spiffe://${trustDomain.name}/spire/server`)
}

/**
 * A gRPC channel's TLS to the server: no client certificate, the server checked as above. grpc-js sends the target's
 * host as SNI; an IP address may not be one (RFC 6066 §3), so the trust domain's name stands in (SPIRE ignores SNI).
 */
export function upstreamChannel (server: UpstreamServer): { credentials: ChannelCredentials, options: ChannelOptions } {
  return {
    credentials: credentials.createSsl(Buffer.from(server.bundle.toPem()), null, null, {
      checkServerIdentity: spiffeCheckServerIdentity(server.bundle, spireServerId(server.trustDomain))
    }),
    options: isIP(splitAddress(server.address).host) === 0 ? {} : { 'grpc.ssl_target_name_override': server.trustDomain.name }
  }
}

/** One TLS handshake with the server's checks; rejects with ERR_UPSTREAM_UNREACHABLE, _IDENTITY or _TIMEOUT. */
export async function checkUpstreamServer (server: UpstreamServer, timeoutMs: number): Promise<void> {
  const { host, port } = splitAddress(server.address)
  const expected = spireServerId(server.trustDomain)
  await new Promise<void>((resolve, reject) => {
    const socket = connect({
      host,
      port,
      ca: server.bundle.toPem(),
      ALPNProtocols: ['h2'],
      checkServerIdentity: spiffeCheckServerIdentity(server.bundle, expected)
    })
    socket.setTimeout(timeoutMs, () => {
      socket.destroy()
      reject(new UpstreamError('ERR_UPSTREAM_TIMEOUT', `SPIRE server ${server.address}: no TLS handshake within ${timeoutMs} ms`))
    })
    socket.once('secureConnect', () => { socket.destroy(); resolve() })
    socket.once('error', err => {
      socket.destroy()
      reject(handshakeError(server.address, expected, err as NodeJS.ErrnoException))
    })
  })
}

/** A failed handshake: after the TCP connection (a certificate or ID problem) it is the server's identity. */
function handshakeError (address: string, expected: SpiffeId, err: NodeJS.ErrnoException): UpstreamError {
  if (err.syscall !== undefined || err.code === 'ECONNRESET') {
    return new UpstreamError('ERR_UPSTREAM_UNREACHABLE', `SPIRE server ${address} is unreachable: ${err.message}`, { cause: err })
  }
  return new UpstreamError('ERR_UPSTREAM_IDENTITY', `SPIRE server ${address} is not ${expected.toString()} under the trust bundle: ${err.message}`, { cause: err })
}

/** host:port, with [v6] brackets allowed; the port is required (SPIRE's is 8081 unless configured). */
export function splitAddress (address: string): { host: string, port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(address)
  const port = Number(match?.[3])
  if (match === null || port < 1 || port > 65535) {
    throw new UpstreamError('ERR_UPSTREAM_ADDRESS', `SPIRE server address "${address}" is not host:port`)
  }
  return { host: match[1] ?? match[2], port }
}
