/**
 * A gRPC client of one service on the upstream SPIRE server, and its unary calls. The server is checked as in
 * server-trust.ts (its chain to the trust bundle, its ID `spiffe://<td>/spire/server`); the client presents an X509-SVID
 * when it has one (the agent's for agent calls, the downstream entry's for NewDownstreamX509CA), as SPIRE's agent and
 * its `spire` UpstreamAuthority do. A status from the server becomes an UpstreamError that keeps SPIRE's own message
 * (e.g. PermissionDenied "authorization denied for method …").
 */
import { credentials, status } from '@grpc/grpc-js'
import type { Client, ServiceClientConstructor, ServiceError } from '@grpc/grpc-js'
import type { KeyObject } from 'node:crypto'
import { encodePem } from '../../spiffe/pem'
import { spiffeCheckServerIdentity } from '../../spiffe/tls-peer'
import { UpstreamError } from './errors'
import { spireServerId, upstreamChannel } from './server-trust'
import type { UpstreamServer } from './server-trust'

/** An X509-SVID the client presents: its chain (DER, leaf first, no root) and its private key. */
export interface ClientSvid {
  readonly chain: readonly Buffer[]
  readonly key: KeyObject
}

/** A client of `service` to `server`, presenting `svid` when given; close it when done. */
export function upstreamClient (service: () => ServiceClientConstructor, server: UpstreamServer, svid?: ClientSvid): Client {
  const channel = upstreamChannel(server)
  const mtls = svid === undefined
    ? channel.credentials
    : credentials.createSsl(
      Buffer.from(server.bundle.toPem()),
      Buffer.from(svid.key.export({ type: 'pkcs8', format: 'pem' })),
      Buffer.from(encodePem('CERTIFICATE', [...svid.chain])),
      { checkServerIdentity: spiffeCheckServerIdentity(server.bundle, spireServerId(server.trustDomain)) }
    )
  return new (service())(server.address, mtls, channel.options)
}

/** How long one step towards the upstream may take unless told otherwise, as for AttestAgent. */
export const DEFAULT_UPSTREAM_TIMEOUT_MS = 30_000

/** The deadline of a step that may take `timeoutMs` (the default when not given). */
export function deadlineAfter (timeoutMs = DEFAULT_UPSTREAM_TIMEOUT_MS): Date {
  return new Date(Date.now() + timeoutMs)
}

type UnaryMethod = (request: object, options: { deadline: Date }, callback: (err: ServiceError | null, response: unknown) => void) => void

/** One unary call, `method` of the service (e.g. "GetAuthorizedEntries"), before `deadline`. */
export async function callUpstream<Response> (client: Client, method: string, request: object, deadline: Date, address: string): Promise<Response> {
  const call = (client as unknown as Record<string, UnaryMethod>)[method].bind(client)
  return await new Promise<Response>((resolve, reject) => {
    call(request, { deadline }, (err, response) => {
      if (err === null) resolve(response as Response)
      else reject(upstreamStatusError(err.code, err.details, `${method} on SPIRE server ${address}`, err))
    })
  })
}

/** A status ending `what` (a call, or one item of a batch), as an UpstreamError; SPIRE's message is kept as it is. */
export function upstreamStatusError (code: status, details: string, what: string, cause?: unknown): UpstreamError {
  const reason = details === '' ? (status[code] ?? String(code)) : details
  switch (code) {
    case status.PERMISSION_DENIED:
      return new UpstreamError('ERR_UPSTREAM_DENIED', `${what} was refused: ${reason}`, { cause })
    case status.DEADLINE_EXCEEDED:
      return new UpstreamError('ERR_UPSTREAM_TIMEOUT', `${what} did not finish in time`, { cause })
    case status.UNAVAILABLE:
      return new UpstreamError('ERR_UPSTREAM_UNREACHABLE', `${what}: the server is unreachable: ${reason}`, { cause })
    default:
      return new UpstreamError('ERR_UPSTREAM_FAILED', `${what} failed (${status[code] ?? code}): ${reason}`, { cause })
  }
}
