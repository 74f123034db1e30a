/**
 * Node mode's same-device calls. An app's outbound connection to another app this same process serves is handed,
 * inside the process, to that app's inbound side, and served there as a connection through its tunnel port from a
 * peer verified as the caller: the caller's own SVID, which the namespace the connection was accepted in names.
 * There is no TLS between the two sides because no byte of the connection leaves the process: mutual TLS would
 * protect nothing, and it would double the work (a node proxy carries both ends of such a hop on one thread).
 *
 * What mutual TLS would check is still checked: the destination's ID against `expect`, as a TLS server's is (a
 * mismatch is a `handshake_failed` with ERR_X509_SVID_ID_MISMATCH); the destination's side admits the caller (its
 * per-peer limit; not screened, so a denied request gets its 403 as through the tunnel), decides, and serves it —
 * the policy, HTTP mode, X-Forwarded-Client-Cert — as it would any tunnelled connection. The caller's side keeps a
 * hold on the connection, so that stopping the caller's app closes it: a TCP connection in its tracker (drained, and
 * closed when a new policy denies it), an HTTP one with its outbound HTTP connections.
 */
import type { Socket } from 'node:net'
import type { SpiffeId } from '../../spiffe/id'
import { checkExpectedPeer } from '../../spiffe/tls-peer'
import type { ListenerConfig } from '../config'
import type { SidecarServices } from '../services'
import type { MtlsConnector } from '../steps/tls-client'
import type { VerifiedPeer } from '../steps/verify-peer'
import { handshakeFailed } from '../steps/verify-peer'
import type { OutboundDestination } from './outbound-tcp'

/** An app the same node proxy serves, as a destination. */
export interface SameDeviceApp {
  /** Its SPIFFE ID now; undefined once it is no longer served. */
  readonly id: SpiffeId | undefined
  /** The ports it serves in HTTP mode. */
  readonly httpPorts: ReadonlySet<number>
  /** Serves `socket`, from `caller`, as a connection to the app's `port` through its tunnel port. */
  serve: (socket: Socket, port: number, caller: VerifiedPeer) => void
}

/**
 * Hands the app's connection `client` to `to`, the app at `destination` (whose `expect` the connector parsed).
 * `lend`: the caller's outbound HTTP connections, which close the connection when the caller's app stops.
 */
export function handOff (services: SidecarServices, listener: ListenerConfig, connector: MtlsConnector, destination: OutboundDestination, to: SameDeviceApp, client: Socket, lend: (socket: Socket) => void): void {
  const { target, expect, servicePort } = destination
  const state = services.identity.current
  const server = to.id
  const refuse = (reason: string, message: string): void => {
    handshakeFailed(services, listener, reason, message, `${target.host}:${target.port}`)
    client.destroy()
  }
  if (state === undefined) return refuse('no-svid', 'no SVID yet from the Workload API')
  if (server === undefined) return refuse('ECONNREFUSED', 'the app is no longer served')
  const expected = connector.expected(expect)
  try {
    if (expected !== undefined) checkExpectedPeer(server, expected)
  } catch (err) {
    return refuse((err as NodeJS.ErrnoException).code ?? 'tls-error', (err as Error).message)
  }
  const { context } = state
  const caller: VerifiedPeer = { id: context.spiffeId, chain: context.svid.chain, notAfter: context.notAfter.getTime() }
  if (to.httpPorts.has(servicePort)) lend(client)
  else services.tracker.add({ listener: listener.name, direction: 'outbound', request: { from: caller.id, to: server, port: servicePort }, sockets: [client] })
  to.serve(client, servicePort, caller)
}
